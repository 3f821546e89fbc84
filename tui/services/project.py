"""A project folder: memgrid.db, images/ (content-addressed) and thumbs/, opened together."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from memgrid.core.errors import ProjectError
from memgrid.core.images import ImageFolder
from memgrid.core.records import GridImage
from memgrid.db.store import DATABASE_NAME, Store

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

    def image_path(self, image: GridImage) -> Path:
        return self.images.absolute(image)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def create_project(root: Path) -> Project:
    """Create the folder layout and database (idempotent on an existing project)."""
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root}: exists and is not a folder")
    for folder in (root, root / "images", root / "thumbs"):
        folder.mkdir(parents=True, exist_ok=True)
    return _open(root, create=True)


def open_project(root: Path | None = None) -> Project:
    root = default_project_dir(root)
    if not (root / DATABASE_NAME).exists():
        raise ProjectError(
            f"{root}: not a memgrid project (no {DATABASE_NAME}); run `memgrid init {root}`"
        )
    return _open(root, create=False)


def _open(root: Path, *, create: bool) -> Project:
    store = Store.open(root / DATABASE_NAME, create=create)
    images = ImageFolder(root)
    images.remove_temporaries()
    return Project(root=root, store=store, images=images)
