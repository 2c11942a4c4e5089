"""Photo processing with Pillow: type by content, decompression-bomb guard, orientation, metadata
stripping, a web size and a thumbnail.

Everything here is synchronous and CPU-bound; :mod:`propmubi_plugins.catalog.media.service` runs
it in worker threads (Pillow releases the GIL while decoding and encoding), never on the event
loop.
"""

from __future__ import annotations

import io

import attrs
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

__all__ = ["FORMATS", "BadImage", "ProcessedImage", "Rendition", "TooManyPixels",
           "UnsupportedImage", "process"]

#: What an upload may be, by content (whatever its name or declared type says).
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
WEB_SIZE = 1600
THUMB_SIZE = 320
_WEB_QUALITY = 82
_THUMB_QUALITY = 75
_ORIGINAL_QUALITY = 90


class UnsupportedImage(ValueError):
    """The bytes are not a JPEG, PNG or WebP image (text, SVG, PDF, zip...)."""


class BadImage(ValueError):
    """An image of an accepted type that cannot be used: truncated, corrupt."""


class TooManyPixels(BadImage):
    """More pixels than the decompression-bomb guard allows."""


@attrs.frozen
class Rendition:
    """One stored form of a photo."""

    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.content_type]


@attrs.frozen
class ProcessedImage:
    """A photo ready to store: the original re-encoded without metadata (in its own format,
    upright), a web size and a thumbnail (WebP, never upscaled)."""

    original: Rendition
    web: Rendition
    thumb: Rendition


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise UnsupportedImage("the file is not a JPEG, PNG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS); the warning is an error in our tests and
        # our own check below refuses the same images in production.
        raise TooManyPixels(f"the image has more than {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"the image cannot be read: {exc}") from None
    # Read from the header before any pixel is decoded: a tiny file may claim 30000 x 30000.
    if image.width * image.height > max_pixels:
        raise TooManyPixels(f"the image is {image.width} x {image.height} pixels; at most "
                            f"{max_pixels} pixels are accepted")
    return image


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Warning, Image.DecompressionBombError) as exc:
        # Warning: where warnings are errors (the tests), Pillow's complaints about a broken
        # file arrive as exceptions; they mean the same as the errors.
        raise BadImage(f"the image is truncated or corrupt: {exc}") from None
    return image


def _srgb(image: Image.Image, profile: bytes) -> Image.Image:
    """Pixels converted from the embedded ICC profile to sRGB (the profile itself is dropped
    with the rest of the metadata)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                              outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unusable profile: the pixels as they are
    return converted if converted is not None else image


def _normalise(image: Image.Image) -> Image.Image:
    """Upright, 8-bit RGB or RGBA, sRGB, no metadata."""
    profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
    upright = ImageOps.exif_transpose(image) or image
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info)
    if upright.mode.startswith("I;16") or upright.mode == "I":
        # 16-bit greyscale: scaled into 8 bits rather than clipped.
        upright = upright.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    wanted = "RGBA" if has_alpha else "RGB"
    clean = upright.convert(wanted) if upright.mode != wanted else upright.copy()
    if profile:
        clean = _srgb(clean, profile)
    # Nothing of the upload's metadata is carried over: EXIF (GPS, camera, owner), XMP,
    # comments, text chunks, ICC (already applied).
    clean.info = {}
    return clean


def _encode(image: Image.Image, content_type: str, quality: int) -> Rendition:
    out = io.BytesIO()
    if content_type == "image/jpeg":
        rgb = image.convert("RGB") if image.mode != "RGB" else image
        rgb.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    elif content_type == "image/png":
        image.save(out, "PNG", optimize=False, compress_level=6)
    else:
        image.save(out, "WEBP", quality=quality, method=4)
    return Rendition(data=out.getvalue(), content_type=content_type, width=image.width,
                     height=image.height)


def _fit(image: Image.Image, size: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((size, size), Image.Resampling.LANCZOS)  # keeps the ratio, never upscales
    return copy


def process(data: bytes, max_pixels: int) -> ProcessedImage:
    """Check and convert an upload (blocking: run it in a thread).

    :param data: the uploaded bytes.
    :param max_pixels: the decompression-bomb limit (width x height).
    :raises UnsupportedImage: not a JPEG, PNG or WebP by content.
    :raises TooManyPixels: larger than ``max_pixels``.
    :raises BadImage: truncated or corrupt.
    """
    image = _open(data, max_pixels)
    content_type = FORMATS[image.format]  # type: ignore[index]
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # an animated WebP or APNG: its first frame is the photo
    clean = _normalise(_decode(image))
    if content_type == "image/jpeg" and clean.mode == "RGBA":
        content_type = "image/png"
    original = _encode(clean, content_type, _ORIGINAL_QUALITY)
    web = _encode(_fit(clean, WEB_SIZE), "image/webp", _WEB_QUALITY)
    thumb = _encode(_fit(clean, THUMB_SIZE), "image/webp", _THUMB_QUALITY)
    return ProcessedImage(original=original, web=web, thumb=thumb)


# A truncated upload must fail, not be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
