"""The SDP shape check, fed strings: no network, no peer connection.

Real offers pass; each malformed one the issue found (and more) is InvalidSdp; and,
fuzzed, whatever the check lets through aiortc's own parser reads without an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from aiortc.sdp import SessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interview_service.sdp_shape import InvalidSdp, check_sdp, is_candidate
from tests.interview.sdp_samples import AIORTC_OFFER, OFFERS


def _drop(pattern: str) -> Callable[[str], str]:
    return lambda sdp: "".join(
        line for line in sdp.splitlines(keepends=True) if not re.match(pattern, line)
    )


def _many_payload_types(sdp: str) -> str:
    types = " ".join(str(n) for n in range(200))
    return re.sub(r"^m=audio (\d+) (\S+) .*$", rf"m=audio \1 \2 {types}", sdp, flags=re.M)


BROKEN: dict[str, Callable[[str], str]] = {
    "no-setup": _drop(r"a=setup:"),
    "no-application": lambda sdp: sdp.partition("m=application")[0],
    "no-rtpmap": _drop(r"a=rtpmap:"),
    "video-not-audio": lambda sdp: sdp.replace("m=audio", "m=video"),
    "garbage-candidate": lambda sdp: sdp.replace(
        "a=mid:0", "a=mid:0\r\na=candidate:garbage here", 1
    ),
    "200-payload-types": _many_payload_types,
    "duplicate-payload-type": lambda sdp: re.sub(r"(m=audio \S+ \S+ )(\d+)", r"\1\2 \2", sdp),
    "forbidden-payload-type": lambda sdp: re.sub(r"(m=audio \S+ \S+ )", r"\g<1>72 ", sdp),
    "no-fingerprint": _drop(r"a=fingerprint:"),
    "no-ice-credentials": _drop(r"a=ice-(ufrag|pwd):"),
    "bad-setup": lambda sdp: re.sub(r"a=setup:\w+", "a=setup:sideways", sdp),
    "port-too-big": lambda sdp: sdp.replace("m=audio 9 ", "m=audio 70000 "),
    "bundle-unknown-mid": lambda sdp: sdp.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 7 8"),
    "duplicate-mid": lambda sdp: sdp.replace("a=mid:1", "a=mid:0"),
    "fmtp-without-rtpmap": lambda sdp: sdp.replace("a=mid:0", "a=mid:0\r\na=fmtp:55 x=1", 1),
    "fmtp-int-not-int": lambda sdp: re.sub(
        r"a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 opus/48000/2\r\na=fmtp:\1 minptime=x", sdp
    ),
    "extmap-three-tokens": lambda sdp: sdp.replace("a=mid:0", "a=mid:0\r\na=extmap:9 a b", 1),
    "ssrc-without-colon": lambda sdp: sdp.replace("a=mid:0", "a=mid:0\r\na=ssrc:1 cname", 1),
    "rtcp-not-a-port": lambda sdp: sdp.replace("a=mid:0", "a=mid:0\r\na=rtcp:nine", 1),
    "vertical-tab": lambda sdp: sdp.replace("s=-", "s=-\x0bm=audio"),
    "not-v0-first": lambda sdp: sdp.replace("v=0", "v=1", 1),
    "no-origin": _drop(r"o="),
    "unknown-profile": lambda sdp: sdp.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
    "bad-connection": lambda sdp: sdp.replace("c=IN IP4 0.0.0.0", "c=IN IP4", 1),
    "nine-media-sections": lambda sdp: sdp + sdp[sdp.index("m=application") :] * 8,
}


@pytest.mark.parametrize("name", sorted(OFFERS))
def test_real_offers_pass(name: str) -> None:
    check_sdp(OFFERS[name], "offer")
    check_sdp(OFFERS[name].replace("\r\n", "\n"), "offer")  # bare newlines are accepted


@pytest.mark.parametrize("browser", sorted(OFFERS))
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_malformed_offers_are_invalid_sdp(browser: str, name: str) -> None:
    broken = BROKEN[name](OFFERS[browser])
    assert broken != OFFERS[browser], "the mutation changed nothing"
    with pytest.raises(InvalidSdp) as caught:
        check_sdp(broken, "offer")
    assert caught.value.code in ("invalid_sdp", "no_audio")
    assert caught.value.message


def test_an_answer_must_choose_its_dtls_role() -> None:
    answer = AIORTC_OFFER.replace("a=setup:actpass", "a=setup:active")
    check_sdp(answer, "answer")
    check_sdp(answer.partition("m=application")[0].replace(" 0 1", " 0"), "answer")
    with pytest.raises(InvalidSdp):
        check_sdp(AIORTC_OFFER, "answer")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1 1 udp 2122260223 192.0.2.10 54400 typ host", True),
        ("1 1 UDP 2122260223 192.0.2.10 54400 typ host generation 0 network-cost 999", True),
        ("3 1 tcp 1518280447 192.0.2.10 9 typ host tcptype active", True),
        ("4 1 udp 16777215 2001:db8::1 3478 typ relay raddr 0.0.0.0 rport 0", True),
        ("garbage", False),
        ("1 1 udp 1 192.0.2.1 5 typ martian", False),
        ("1 x udp 1 192.0.2.1 5 typ host", False),
        ("1 1 sctp 1 192.0.2.1 5 typ host", False),
        ("1 1 udp 1 192.0.2.1 port typ host", False),
        ("1 1 udp 1 192.0.2.1 5 typ host dangling", False),
        ("1 1 udp 1 a b\x00c 5 typ host", False),
    ],
)
def test_candidate_shape(text: str, ok: bool) -> None:
    assert is_candidate(text) is ok


_LINES = AIORTC_OFFER.split("\r\n")
_PREFIXES = ["a=candidate:", "a=fmtp:", "a=rtpmap:", "m=", "a=setup:", "a=ssrc:", "a=group:", "c="]
_ALPHABET = st.sampled_from(list(" :/=-.0123456789abcxyzAZ\t\x00\x0b\u2028é\r\n"))


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    lines = list(_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["drop", "dup", "swap", "edit", "insert", "truncate"])):
            case "drop":
                del lines[i]
            case "dup":
                lines.insert(i, lines[i])
            case "swap":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            case "edit":
                at = draw(st.integers(0, len(lines[i])))
                lines[i] = lines[i][:at] + draw(st.text(_ALPHABET, max_size=6)) + lines[i][at:]
            case "insert":
                prefix = draw(st.sampled_from(_PREFIXES))
                lines.insert(i, prefix + draw(st.text(_ALPHABET, max_size=30)))
            case "truncate":
                lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        if not lines:
            lines = ["v=0"]
    return "\r\n".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_what_the_check_accepts_aiortc_parses(sdp: str) -> None:
    try:
        check_sdp(sdp, "offer")
    except InvalidSdp:
        return
    parsed = SessionDescription.parse(sdp)  # must not raise
    assert any(media.kind == "audio" for media in parsed.media)
    assert all(media.dtls is not None for media in parsed.media)
