"""A project folder: memgrid.db, images/ (content-addressed) and thumbs/, opened together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from memgrid.core.annotators import PROJECT_CONFIG_NAME, read_annotator_table
from memgrid.core.errors import ProjectError
from memgrid.core.images import ImageFolder
from memgrid.core.records import GridImage
from memgrid.db.store import DATABASE_NAME, Store
from memgrid.tui.services.access import check_writable, is_shared, share_with_group

PROJECT_ENV = "MEMGRID_PROJECT"


def default_project_dir(explicit: Path | None = None) -> Path:
    """`--project`, else $MEMGRID_PROJECT, else the current folder."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(PROJECT_ENV)
    return Path(from_env) if from_env else Path.cwd()


@dataclass
class Project:
    root: Path
    store: Store
    images: ImageFolder

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    def own_files(self) -> list[Path]:
        """What no output may replace or go into: the database (with its WAL files), the
        images and the thumbnails."""
        files = [self.images.root, self.thumbs_dir]
        if self.store.path is not None:
            database = self.store.path
            files += [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
        return files

    @property
    def read_only(self) -> bool:
        """Opened read-only: its folder is not writable by this account."""
        return self.store.read_only

    def image_path(self, image: GridImage) -> Path:
        return self.images.absolute(image)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def create_project(root: Path, *, shared: bool = False, group: str | None = None) -> Project:
    """Create the folder layout and database (idempotent on an existing project).

    `shared`: set the project up for a Unix group (default: the folder's own), see
    tui/services/access.py; on an existing project it fixes what is not shared yet.
    """
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root}: exists and is not a folder")
    for folder in (root, root / "images", root / "thumbs"):
        folder.mkdir(parents=True, exist_ok=True)
    project = _open(root, create=True)
    if shared:
        try:
            share_with_group(root, group)
        except BaseException:
            project.close()
            raise
        project.images.shared = True
    return project


def open_project(root: Path | None = None) -> Project:
    root = default_project_dir(root)
    if not (root / DATABASE_NAME).exists():
        raise ProjectError(
            f"{root}: not a memgrid project (no {DATABASE_NAME}); run `memgrid init {root}`"
        )
    return _open(root, create=False)


def _open(root: Path, *, create: bool) -> Project:
    """Open the store (read-only when the folder is not writable) with the project's rules."""
    check_writable(root)
    annotators = read_annotator_table(root / PROJECT_CONFIG_NAME, root.stat().st_uid)
    store = Store.open(root / DATABASE_NAME, create=create, annotators=annotators)
    images = ImageFolder(root, shared=is_shared(root))
    if not store.read_only:
        images.remove_temporaries()
    return Project(root=root, store=store, images=images)
