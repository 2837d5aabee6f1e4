"""Checks run on Office files (zip archives of XML parts) before any library parses them.

* Zip bombs: the uncompressed total, the number of members and each member's compression ratio
  are capped, using the sizes in the zip's central directory. Python's ``zipfile`` never
  decompresses a member beyond its declared size, so a lying directory cannot get around the
  caps. Zips nested inside the document (embedded objects) are never opened.
* XML entity attacks ("billion laughs", external entities): python-docx and python-pptx parse
  with ``resolve_entities=False`` but openpyxl uses lxml's defaults, so every XML part is scanned
  for ``<!DOCTYPE``/``<!ENTITY`` and refused. Office Open XML never legitimately contains a DTD.
  Images (an SVG may carry a DOCTYPE) are not parsed as XML by the libraries and are not scanned.
"""

from __future__ import annotations

import zipfile
from xml.etree import ElementTree

from .types import ParseError

MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 10_000
# A member this large must not be compressed more than MAX_RATIO times.
RATIO_CHECK_BYTES = 10 * 1024 * 1024
MAX_RATIO = 100

_DTD_MARKERS = [
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
]
_OVERLAP = max(len(marker) for marker in _DTD_MARKERS) - 1
_CHUNK = 1024 * 1024
_CONTENT_TYPES = "[Content_Types].xml"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def check_office_zip(zf: zipfile.ZipFile) -> None:
    """Raise ParseError if the archive looks like a zip bomb or an XML part declares a DTD."""
    members = zf.infolist()
    if len(members) > MAX_MEMBERS:
        raise ParseError(f"the archive has more than {MAX_MEMBERS} files in it (zip bomb?)")
    if sum(member.file_size for member in members) > MAX_UNCOMPRESSED_BYTES:
        raise ParseError(f"the archive expands to more than {MAX_UNCOMPRESSED_BYTES // 2**20} MB (zip bomb?)")
    for member in members:
        if member.file_size > RATIO_CHECK_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise ParseError(f"a part of the archive is compressed more than {MAX_RATIO} times (zip bomb?)")
    for name in _xml_part_names(zf):
        if _declares_dtd(zf, name):
            raise ParseError("the document contains an XML DTD or entity declaration, which Office files never need")


def _xml_part_names(zf: zipfile.ZipFile) -> list[str]:
    """Names of the parts the Office libraries will parse as XML.

    That is every ``.xml``/``.rels`` part plus any part that ``[Content_Types].xml`` gives an XML
    content type (images excluded), whatever its name.
    """
    names = zf.namelist()
    xml_names = {name for name in names if name.lower().endswith((".xml", ".rels"))}
    if _CONTENT_TYPES not in names or _declares_dtd(zf, _CONTENT_TYPES):
        return sorted(xml_names | ({_CONTENT_TYPES} & set(names)))
    root = ElementTree.fromstring(zf.read(_CONTENT_TYPES))
    xml_extensions, xml_parts = set(), set()
    for entry in root:
        content_type = entry.get("ContentType", "")
        if not content_type.endswith("xml") or content_type.startswith("image/"):
            continue
        if entry.tag == f"{_CT_NS}Default":
            xml_extensions.add("." + entry.get("Extension", "").lower())
        elif entry.tag == f"{_CT_NS}Override":
            xml_parts.add(entry.get("PartName", "").lstrip("/"))
    xml_names |= {name for name in names if name in xml_parts or name.lower().endswith(tuple(xml_extensions))}
    return sorted(xml_names)


def _declares_dtd(zf: zipfile.ZipFile, name: str) -> bool:
    """Stream one member and look for a DTD marker in any of XML's encodings."""
    tail = b""
    with zf.open(name) as member:
        while chunk := member.read(_CHUNK):
            window = tail + chunk
            if any(marker in window for marker in _DTD_MARKERS):
                return True
            tail = window[-_OVERLAP:]
    return False
