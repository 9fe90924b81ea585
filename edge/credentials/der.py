"""Just enough DER to read one X.509 extension's OIDs when a strict parser refuses the certificate.

TLV: one tag byte (no multi-byte tags occur here), a length (short form, or 0x8N then N
bytes), then the value. TBSCertificate ::= SEQUENCE { …, [3] EXPLICIT Extensions };
Extension ::= SEQUENCE { extnID OID, critical BOOLEAN OPTIONAL, extnValue OCTET STRING }.
"""

from __future__ import annotations

from collections.abc import Iterator

SEQUENCE, OID, OCTET_STRING, EXTENSIONS_TAG = 0x30, 0x06, 0x04, 0xA3


def tlvs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, value) of each element in `data`; ValueError on a truncated element."""
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("truncated DER element")
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise ValueError("unsupported DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise ValueError("truncated DER element")
        yield tag, data[pos : pos + length]
        pos += length


def oid_text(value: bytes) -> str:
    """Dotted form of an OID's DER value bytes."""
    if not value:
        raise ValueError("empty OID")
    arcs = [min(value[0] // 40, 2), value[0] - 40 * min(value[0] // 40, 2)]
    arc = 0
    for byte in value[1:]:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    return ".".join(map(str, arcs))


def extension_oids(tbs_certificate: bytes, extension_oid: str) -> list[str]:
    """OIDs listed in the extension `extension_oid` (e.g. EKU); [] when absent or empty.

    Raises:
        ValueError: the TBSCertificate is not DER this reader understands.
    """
    (tag, tbs), *_ = tlvs(tbs_certificate)
    if tag != SEQUENCE:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    for tag, wrapped in tlvs(tbs):
        if tag != EXTENSIONS_TAG:
            continue
        (_, extensions), *_ = tlvs(wrapped)
        for _, extension in tlvs(extensions):
            parts = list(tlvs(extension))
            if len(parts) < 2 or parts[0][0] != OID or oid_text(parts[0][1]) != extension_oid:
                continue
            value_tag, value = parts[-1]
            if value_tag != OCTET_STRING:
                raise ValueError("extnValue is not an OCTET STRING")
            inner = list(tlvs(value))
            if not inner:
                return []
            return [oid_text(oid) for tag, oid in tlvs(inner[0][1]) if tag == OID]
    return []
