"""The workspace options of every command that uses a workspace: modelport's ``-w/--workspace`` folder (also
``--path``, az ml's project folder) and ``az ml``'s ``--workspace-name``, ``-g/--resource-group`` and
``--subscription-id``, so an ``az ml`` command line runs unchanged.

In ``az ml``, ``-w`` is the workspace's *name*; here it is its folder. A ``-w`` that names no folder is therefore
taken as the name when the workspace of the current folder has that name (with a warning), and refused otherwise;
it never silently falls back to another workspace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import InvalidInput, NotFound

_NO_AZURE = ("there is no Azure subscription or resource group here; the workspace is the one of the folder "
             "(-w/--workspace, default: this folder or a parent)")


@dataclass(frozen=True)
class WorkspaceChoice:
    """What the workspace options of one command line asked for (None: not given)."""

    folder: str | None = None
    name: str | None = None
    resource_group: str | None = None
    subscription_id: str | None = None

    def directory(self):
        """The chosen workspace's ``WorkspaceDir``: the one in ``folder`` or a parent of it (default: of the current
        folder), checked to be named ``name`` when that is given.

        ``resource_group`` and ``subscription_id`` warn (``ConfigWarning``) that they do not apply. Raises
        InvalidInput for a ``folder`` that is neither a folder nor this folder's workspace's name, NotFound when
        there is no workspace or it has another name than ``name``.
        """
        from ..api.workspace_dir import WorkspaceDir
        from ..sdk.files import KeyRule

        rule = KeyRule("the command line")
        rule.unsupported("--resource-group", self.resource_group, _NO_AZURE)
        rule.unsupported("--subscription-id", self.subscription_id, _NO_AZURE)
        if self.folder is None or Path(self.folder).expanduser().exists():
            found = WorkspaceDir.find(Path(self.folder).expanduser() if self.folder else None)
        else:
            found = self._named_by_folder_option(rule)
        if self.name is not None and found.name != self.name:
            raise NotFound(f"--workspace-name {self.name!r}: the workspace in {found.root.parent} is "
                           f"{found.name!r}; give its name, or the folder of workspace {self.name!r} with "
                           "-w/--workspace")
        return found

    def _named_by_folder_option(self, rule):
        """The current folder's workspace when ``-w`` (no folder) is its name, as ``az ml``'s ``-w`` was."""
        from ..api.workspace_dir import WorkspaceDir
        from ..sdk.files import shown

        refused = InvalidInput(f"-w/--workspace {self.folder!r}: no such folder; modelport's -w is the folder of the "
                               "workspace (az ml's -w was its name); give that folder, or leave -w out to use the "
                               "workspace of this folder or a parent")
        try:
            found = WorkspaceDir.find()
        except NotFound:
            raise refused from None
        if found.name != self.folder:
            raise refused
        rule.note(f"-w {shown(self.folder)} names no folder; taken as az ml's workspace name: the workspace of "
                  f"this folder ({found.root.parent}) is {shown(found.name)}")
        return found


_OPTIONS = (
    click.option("--workspace", "--path", "-w", "workspace_folder", type=click.Path(file_okay=False), default=None,
                 help="Folder of the workspace (default: this folder or a parent; --path as in az ml). az ml's -w "
                      "was the workspace's name: one naming no folder must be this folder's workspace's name."),
    click.option("--workspace-name", "workspace_name", default=None,
                 help="az ml's workspace name: the workspace used must have it."),
    click.option("--resource-group", "-g", "resource_group", default=None,
                 help="az ml's resource group: accepted, does not apply here (warns)."),
    click.option("--subscription-id", "subscription_id", default=None,
                 help="az ml's subscription: accepted, does not apply here (warns)."),
)


def workspace_option(command: Callable) -> Callable:
    """Add the workspace options; the command receives them as ``workspace_choice``, a ``WorkspaceChoice``."""

    @functools.wraps(command)
    def choosing(*args, workspace_folder, workspace_name, resource_group, subscription_id, **kwargs):
        return command(*args, workspace_choice=WorkspaceChoice(workspace_folder, workspace_name, resource_group,
                                                             subscription_id), **kwargs)

    for option in reversed(_OPTIONS):
        choosing = option(choosing)
    return choosing


def workspace_from(choice: WorkspaceChoice):
    """The ``Workspace`` the options chose (see ``WorkspaceChoice.directory``)."""
    from ..sdk.workspace import Workspace

    found = choice.directory()
    return Workspace(found.name, _dir=found)
