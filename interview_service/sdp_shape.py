"""The shape of a remote SDP, checked before aiortc sees it. Pure: no aiortc, no I/O.

aiortc parses SDP with ``assert``, ``int()`` and dictionary look-ups and fails later on
what it let through (no ``a=setup`` gives ``'NoneType' object has no attribute
'role'``). This module accepts only what a browser sends for this service's calls: one
or more audio sections and a data channel, each with ICE and DTLS parameters, every
line and every attribute aiortc reads in the form it expects. Anything else is
:class:`InvalidSdp` (400 ``invalid_sdp``) with a message that names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from backend.core.errors import InvalidInput

MAX_LINES = 2000
MAX_LINE_CHARS = 4096
MAX_MEDIA = 8
MAX_FORMATS = 32  # payload types on one m= line
MAX_CANDIDATES = 64  # per media section

RTP_PROFILES = {"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/SAVPF", "TCP/TLS/RTP/SAVPF"}
SCTP_PROFILES = {"UDP/DTLS/SCTP", "DTLS/SCTP", "TCP/DTLS/SCTP"}
STATIC_PAYLOAD_TYPES = set(range(35))  # RFC 3551's static types may omit a=rtpmap
FORBIDDEN_PAYLOAD_TYPES = set(range(72, 77))  # they collide with RTCP packet types
FMTP_INT_PARAMETERS = {
    "apt",
    "max-fr",
    "max-fs",
    "maxplaybackrate",
    "minptime",
    "stereo",
    "useinbandfec",
}  # fmt: skip  (aiortc reads these with int())

_LINE = re.compile(r"[a-z]=.*")
_MEDIA = re.compile(r"m=(audio|application) (\d{1,5}) (\S+) (\S+(?: \S+)*)")
_CONNECTION = re.compile(r"IN IP[46] [0-9A-Fa-f.:]{1,64}")
_TOKEN = r"[\x21-\x7e]"  # noqa: S105 (a regex, not a password)
_CANDIDATE = re.compile(
    rf"{_TOKEN}{{1,32}} \d{{1,3}} (?i:udp|tcp) \d{{1,10}} [0-9A-Za-z.:\-]{{1,255}} \d{{1,5}} "
    r"typ (host|srflx|prflx|relay)"
    rf"(?: {_TOKEN}{{1,64}} {_TOKEN}{{1,255}})*"
)
_FINGERPRINT = re.compile(
    r"(?i:sha-(?:1|224|256|384|512)) [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,63}"
)
_RTPMAP = re.compile(r"(\d{1,3}) [A-Za-z0-9_.\-]{1,32}/\d{1,6}(?:/\d{1,2})?")
_ATTRIBUTES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "candidate": _CANDIDATE.pattern,
        "fingerprint": _FINGERPRINT.pattern,
        "setup": r"active|passive|actpass",
        "ice-ufrag": r"[A-Za-z0-9+/]{4,256}",
        "ice-pwd": r"[A-Za-z0-9+/]{22,256}",
        "ice-options": rf"{_TOKEN}{{1,64}}(?: {_TOKEN}{{1,64}})*",
        "mid": rf"{_TOKEN}{{1,32}}",
        "msid": rf"{_TOKEN}{{1,64}}(?: {_TOKEN}{{1,64}})?",
        "group": rf"[A-Za-z-]{{1,32}}(?: {_TOKEN}{{1,32}}){{0,{MAX_MEDIA}}}",
        "msid-semantic": rf" ?{_TOKEN}{{1,64}}(?: {_TOKEN}{{1,64}})*",
        "extmap": rf"\d{{1,2}}(?:/(?:sendrecv|sendonly|recvonly|inactive))? {_TOKEN}{{1,256}}",
        "rtcp": r"\d{1,5}(?: IN IP[46] [0-9A-Fa-f.:]{1,64})?",
        "rtpmap": _RTPMAP.pattern,
        "fmtp": rf"\d{{1,3}} {_TOKEN}{{1,1000}}",
        "rtcp-fb": rf"(?:\d{{1,3}}|\*) {_TOKEN}{{1,64}}(?: {_TOKEN}{{1,64}})?",
        "ssrc": r"\d{1,10} [A-Za-z-]{1,32}:.{0,256}",
        "ssrc-group": r"[A-Za-z-]{1,32}(?: \d{1,10}){1,8}",
        "sctp-port": r"\d{1,5}",
        "max-message-size": r"\d{1,10}",
        "sctpmap": rf"\d{{1,5}} {_TOKEN}.{{0,128}}",
    }.items()
}


class InvalidSdp(InvalidInput):
    code = "invalid_sdp"


@dataclass(slots=True)
class _Section:
    kind: str
    port: int
    profile: str
    formats: list[str]
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def values(self, name: str) -> list[str | None]:
        return [value for attr, value in self.attributes if attr == name]


def check_sdp(sdp: str, kind: Literal["offer", "answer"]) -> None:
    """Raise :class:`InvalidSdp` unless ``sdp`` has the shape this service accepts."""
    lines = _lines(sdp)
    session, sections = _split(lines)
    if not sections:
        raise InvalidSdp("the SDP has no m= section")
    if len(sections) > MAX_MEDIA:
        raise InvalidSdp(f"at most {MAX_MEDIA} m= sections")
    for section in sections:
        _check_section(section, session, kind)
    _check_bundle(session, sections)
    if not any(s.kind == "audio" and s.port != 0 for s in sections):
        raise InvalidSdp("the SDP has no audio m= section", code="no_audio")
    if kind == "offer" and not any(s.kind == "application" for s in sections):
        raise InvalidSdp("the offer has no data channel: open the 'events' channel first")


def is_candidate(text: str) -> bool:
    """An ``a=candidate:`` value (without the prefix) in the form aiortc parses."""
    return len(text) <= MAX_LINE_CHARS and _CANDIDATE.fullmatch(text) is not None


def _lines(sdp: str) -> list[str]:
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) > MAX_LINES:
        raise InvalidSdp(f"the SDP has over {MAX_LINES} lines")
    if not lines or lines[0] != "v=0":
        raise InvalidSdp("SDP must start with v=0")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS or not line.isprintable() or not _LINE.fullmatch(line):
            raise InvalidSdp(f"line {number} is not an SDP line (<type>=<value>)")
    for required in ("o=", "s=", "t="):
        if not any(line.startswith(required) for line in lines):
            raise InvalidSdp(f"the SDP has no {required} line")
    return lines


def _split(lines: list[str]) -> tuple[_Section, list[_Section]]:
    session = _Section("session", 0, "", [])
    sections: list[_Section] = []
    current = session
    for line in lines:
        if line.startswith("m="):
            current = _media(line)
            sections.append(current)
        elif line.startswith("c="):
            if not _CONNECTION.fullmatch(line[2:]):
                raise InvalidSdp(f"bad connection line: {line[:80]!r}")
        elif line.startswith("a="):
            current.attributes.append(_attribute(line))
    return session, sections


def _media(line: str) -> _Section:
    match = _MEDIA.fullmatch(line)
    if match is None:
        raise InvalidSdp("an m= line is not 'm=audio|application <port> <proto> <formats>'")
    kind, port, profile, formats = match.groups()
    section = _Section(kind, int(port), profile, formats.split(" "))
    if section.port > 65535:
        raise InvalidSdp("an m= line's port is over 65535")
    profiles = RTP_PROFILES if kind == "audio" else SCTP_PROFILES
    if profile not in profiles:
        raise InvalidSdp(f"m={kind} uses {profile[:40]!r}; expected one of {sorted(profiles)}")
    if len(section.formats) > MAX_FORMATS:
        raise InvalidSdp(f"at most {MAX_FORMATS} formats on an m= line")
    if len(set(section.formats)) != len(section.formats):
        raise InvalidSdp("an m= line lists a format twice")
    return section


def _attribute(line: str) -> tuple[str, str | None]:
    name, colon, value = line[2:].partition(":")
    pattern = _ATTRIBUTES.get(name)
    if pattern is not None and (not colon or not pattern.fullmatch(value)):
        raise InvalidSdp(f"malformed a={name} line: {line[:80]!r}")
    return name, value if colon else None


def _check_section(section: _Section, session: _Section, kind: str) -> None:
    inherited = session.attributes + section.attributes
    here = _Section(section.kind, section.port, section.profile, section.formats, inherited)
    if not here.values("ice-ufrag") or not here.values("ice-pwd"):
        raise InvalidSdp(f"the m={section.kind} section has no a=ice-ufrag/a=ice-pwd")
    if not here.values("fingerprint"):
        raise InvalidSdp(f"the m={section.kind} section has no a=fingerprint")
    setups = here.values("setup")
    if not setups:
        raise InvalidSdp(f"the m={section.kind} section has no a=setup")
    if kind == "answer" and setups[-1] == "actpass":
        raise InvalidSdp("an answer's a=setup is active or passive")
    if len(section.values("mid")) > 1:
        raise InvalidSdp(f"the m={section.kind} section has two a=mid lines")
    if len(section.values("candidate")) > MAX_CANDIDATES:
        raise InvalidSdp(f"at most {MAX_CANDIDATES} candidates per m= section")
    if section.kind == "audio":
        _check_payload_types(section)


def _check_payload_types(section: _Section) -> None:
    mapped: set[int] = set()
    for value in section.values("rtpmap"):
        match = _RTPMAP.fullmatch(value or "")
        assert match is not None  # checked with the line
        mapped.add(int(match.group(1)))
    for raw in section.formats:
        if not raw.isdigit() or int(raw) > 127 or int(raw) in FORBIDDEN_PAYLOAD_TYPES:
            raise InvalidSdp(f"{raw[:10]!r} is not an RTP payload type (0-127)")
        if int(raw) not in STATIC_PAYLOAD_TYPES and int(raw) not in mapped:
            raise InvalidSdp(f"payload type {raw} has no a=rtpmap")
    listed = {int(raw) for raw in section.formats}
    if not mapped <= listed:
        raise InvalidSdp("an a=rtpmap names a payload type the m= line does not list")
    for value in section.values("fmtp"):
        payload_type, _, parameters = (value or "").partition(" ")
        if int(payload_type) not in mapped:
            raise InvalidSdp(f"a=fmtp:{payload_type} has no a=rtpmap")
        for parameter in parameters.split(";"):
            name, equals, number = parameter.partition("=")
            if name in FMTP_INT_PARAMETERS and not (equals and number.isdigit()):
                raise InvalidSdp(f"a=fmtp parameter {name} is an integer")


def _check_bundle(session: _Section, sections: list[_Section]) -> None:
    mids = [value for s in sections for value in s.values("mid")]
    if len(set(mids)) != len(mids):
        raise InvalidSdp("two m= sections share an a=mid")
    for group in session.values("group"):
        items = (group or "").split(" ")
        if items[0] == "BUNDLE" and not set(items[1:]) <= set(mids):
            raise InvalidSdp("a=group:BUNDLE names a mid no m= section has")
        if items[0] == "BUNDLE" and len(mids) < len(sections):
            raise InvalidSdp("with a=group:BUNDLE every m= section needs an a=mid")
