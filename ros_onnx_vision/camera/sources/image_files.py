"""Image files: one file, a directory or a glob pattern, in natural sort order.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from ros_onnx_vision.camera.sources.base import (Frame, FrameSource, IMAGE_EXTENSIONS, imread,
                                                 natural_key, SourceError, SourceKind)


class ImageFileSource(FrameSource):
    """A single image file: one frame, or the same frame forever when looping."""

    kind = SourceKind.IMAGE

    def __init__(self, path: str, loop: bool):
        """Decode the image now so problems surface at open time."""
        super().__init__(path)
        if not os.path.isfile(path):
            raise SourceError(f'image file {path!r} does not exist')
        image = imread(path)
        if image is None:
            raise SourceError(f'cannot decode image file {path!r} (not an image OpenCV reads, '
                              'or corrupt)')
        self._image = image
        self._size = (image.shape[1], image.shape[0])
        self._loop = loop

    def read(self) -> Frame | None:
        """Return (a copy of) the image; None after the first frame unless looping."""
        if self._count and not self._loop:
            return None
        return self._deliver(self._image.copy())

    def describe(self) -> str:
        """Describe the image."""
        return f'image {self.name!r} ({self._size_text()}, loop={self._loop})'


class ImageListSource(FrameSource):
    """Images from a directory or glob, in natural sort order, decoded lazily.

    Files that cannot be decoded are skipped, dropped from the list and reported once via
    `take_warnings()`; SourceError is raised when no file at all can be decoded.
    """

    kind = SourceKind.IMAGES

    def __init__(self, source: str, loop: bool):
        """List the files now and decode the first one to fail fast."""
        super().__init__(source)
        path = os.path.expanduser(source)
        if os.path.isdir(path):
            names = [os.path.join(path, n) for n in os.listdir(path)]
            files = [n for n in names
                     if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(n)]
            if not files:
                exts = ', '.join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(f'directory {source!r} contains no image files '
                                  f'(looked for {exts})')
        elif any(c in source for c in '*?['):
            files = [n for n in glob.glob(path) if os.path.isfile(n)]
            if not files:
                raise SourceError(f'glob pattern {source!r} matched no files')
        else:
            raise SourceError(f'{source!r} is neither a directory nor a glob pattern')
        self._files = sorted(files, key=natural_key)
        self._total = len(self._files)
        self._pos = 0
        self._loop = loop
        self._pending = self._next_image()
        assert self._pending is not None  # the list is not empty, so it decodes one or raises
        self._size = (self._pending.shape[1], self._pending.shape[0])

    @property
    def files(self) -> list[str]:
        """The (remaining decodable) files, in delivery order."""
        return list(self._files)

    def _next_image(self) -> np.ndarray | None:
        wrapped = False
        while self._files:
            if self._pos >= len(self._files):
                if not self._loop or wrapped:
                    return None
                self._pos, wrapped = 0, True
                continue
            path = self._files[self._pos]
            image = imread(path)
            if image is not None:
                self._pos += 1
                return image
            self._warnings.append(f'skipping {path!r}: cannot decode it as an image')
            del self._files[self._pos]
        raise SourceError(f'none of the {self._total} files of {self.name!r} could be decoded '
                          'as images')

    def read(self) -> Frame | None:
        """Return the next image; loops or returns None at the end."""
        image, self._pending = self._pending, None
        if image is None:
            image = self._next_image()
            if image is None:
                return None
        return self._deliver(image)

    def describe(self) -> str:
        """Describe the image list."""
        return (f'{len(self._files)} images from {self.name!r} (first {self._size_text()}, '
                f'loop={self._loop})')
