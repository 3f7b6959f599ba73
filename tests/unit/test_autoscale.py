"""The azureml-fe autoscaling decision and the scale-down delay, driven by explicit time."""

import pytest

from modelport.reconcile.autoscale import Autoscaler, AutoscaleSettings, desired_replicas, utilization

DEFAULT = AutoscaleSettings()  # min 1, max 10, target 70 %, refresh 1 s, 1 concurrent request per replica


def test_utilization_counts_in_flight_and_queued_over_capacity():
    assert utilization(4, 2, 2, 2) == 0.5
    assert utilization(0, 3, 0, 1) == 3  # no replicas: measured against one replica's capacity


def test_utilization_exactly_at_target_keeps_the_count():
    assert desired_replicas(10, 7, 0, DEFAULT) == 10  # 7 / 10 = 70 %
    assert desired_replicas(10, 5, 2, DEFAULT) == 10
    assert desired_replicas(3, 2.1, 0, DEFAULT) == 3  # an averaged load; 3 * 0.7 / 0.7 is 3.0000000000000004


def test_the_decision_brings_utilization_to_the_target():
    assert desired_replicas(1, 3, 0, DEFAULT) == 5  # 3 busy / 0.7 = 4.3 -> 5
    assert desired_replicas(2, 2, 2, DEFAULT) == 6  # queued requests count as load
    assert desired_replicas(2, 8, 0, AutoscaleSettings(max_concurrent=4)) == 3  # 8 / (4 * 0.7) = 2.9
    assert desired_replicas(4, 1, 0, AutoscaleSettings(target_utilization=50)) == 2


def test_zero_load_gives_the_minimum():
    assert desired_replicas(5, 0, 0, DEFAULT) == 1
    assert desired_replicas(5, 0, 0, AutoscaleSettings(min_replicas=3)) == 3
    assert desired_replicas(0, 0, 0, AutoscaleSettings(min_replicas=0)) == 0


def test_clamped_to_min_and_max():
    assert desired_replicas(10, 100, 0, DEFAULT) == 10
    assert desired_replicas(2, 100, 0, AutoscaleSettings(max_replicas=4)) == 4
    assert desired_replicas(2, 0.1, 0, AutoscaleSettings(min_replicas=2)) == 2


def test_no_replicas_with_queued_requests_scales_from_zero():
    assert desired_replicas(0, 0, 3, AutoscaleSettings(min_replicas=0)) == 5


def test_inconsistent_settings_are_refused():
    with pytest.raises(ValueError, match="inconsistent autoscale settings"):
        AutoscaleSettings(min_replicas=5, max_replicas=2)


def test_a_load_step_scales_up_within_one_decision():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=1)
    assert scaler.observe(0.0, 1, 0, 0) is None
    assert scaler.observe(1.0, 1, 7, 0) == 10


def test_the_decision_averages_the_last_refresh_period():
    scaler = Autoscaler(AutoscaleSettings(refresh_seconds=2), scale_down_delay_s=60)
    assert scaler.observe(0.0, 1, 0, 0) is None
    assert scaler.observe(1.0, 1, 6, 0) == 5  # mean load 3 over the last 2 s -> 3 / 0.7 -> 5
    assert scaler.observe(2.0, 5, 6, 0) == 9  # the sample at 0 s left the window: mean 6 -> 9


def test_no_scale_down_before_the_delay_then_down_after_it():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=1)
    assert scaler.observe(0.0, 5, 0, 0) is None
    assert scaler.observe(0.5, 5, 0, 0) is None
    assert scaler.observe(0.9, 5, 0, 0) is None
    assert scaler.observe(1.0, 5, 0, 0) == 1


def test_scale_down_goes_to_the_highest_decision_in_the_window():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=3)
    assert scaler.observe(0.0, 8, 0, 0) is None
    assert scaler.observe(1.0, 8, 2, 0) is None  # decision 3
    assert scaler.observe(2.0, 8, 1, 0) is None  # decision 2
    assert scaler.observe(3.0, 8, 0, 0) == 3


def test_a_burst_during_the_down_window_cancels_the_scale_down():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=2)
    assert scaler.observe(0.0, 5, 0, 0) is None
    assert scaler.observe(1.0, 5, 3.5, 0) is None  # decision 5 == current: the window starts over
    assert scaler.observe(2.0, 5, 0, 0) is None
    assert scaler.observe(3.0, 5, 0, 0) is None  # only 1 s below since the burst
    assert scaler.observe(4.0, 5, 0, 0) == 1


def test_a_scale_down_happens_once_per_window():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=1)
    scaler.observe(0.0, 4, 0, 0)
    assert scaler.observe(1.0, 4, 0, 0) == 1
    assert scaler.observe(2.0, 1, 0, 0) is None


def test_zero_load_settles_at_the_minimum():
    scaler = Autoscaler(AutoscaleSettings(min_replicas=2), scale_down_delay_s=1)
    scaler.observe(0.0, 6, 0, 0)
    assert scaler.observe(1.0, 6, 0, 0) == 2
    assert scaler.observe(2.0, 2, 0, 0) is None


def test_a_count_above_a_lowered_maximum_is_corrected_at_once():
    scaler = Autoscaler(DEFAULT, scale_down_delay_s=60)
    scaler.settings = AutoscaleSettings(max_replicas=4)
    assert scaler.observe(0.0, 9, 9, 0) == 4


def test_a_count_below_a_raised_minimum_scales_up_at_once():
    scaler = Autoscaler(AutoscaleSettings(min_replicas=3), scale_down_delay_s=60)
    assert scaler.observe(0.0, 1, 0, 0) == 3


def test_settings_from_stored_deployment_settings():
    from modelport.sdk.deploy_config import aks_deploy_configuration

    autoscaled = aks_deploy_configuration(autoscale_min_replicas=2, autoscale_max_replicas=5,
                                          autoscale_target_utilization=60, replica_max_concurrent_requests=4)
    assert AutoscaleSettings.of(autoscaled.to_settings()) == (True, AutoscaleSettings(2, 5, 60, 1, 4))
    fixed = aks_deploy_configuration(num_replicas=3)
    assert AutoscaleSettings.of(fixed.to_settings()) == (False, AutoscaleSettings(3, 3, 70, 1, 1))
