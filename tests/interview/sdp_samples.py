"""Offers as real peers make them (aiortc, Chrome, Firefox): the SDP tests' starting points."""

from __future__ import annotations

FP256 = ":".join(f"{n * 7 % 256:02X}" for n in range(32))

AIORTC_OFFER = f"""v=0
o=- 4005023964 4005023964 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 96 9 0 8
c=IN IP4 0.0.0.0
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=mid:0
a=msid:a84cabaa-cc6c-4c57-a18a-0021bf1c0c01 c2312ce4-1675-4f97-9649-96d2d983fae5
a=rtcp:9 IN IP4 0.0.0.0
a=rtcp-mux
a=ssrc:214471860 cname:81f8ce92-5882-4b0b-be27-e5e97e31686b
a=rtpmap:96 opus/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=end-of-candidates
a=ice-ufrag:4fMx
a=ice-pwd:3aBc79sicrnAQv55N76owM
a=fingerprint:sha-256 {FP256}
a=setup:actpass
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
a=end-of-candidates
a=ice-ufrag:4fMx
a=ice-pwd:3aBc79sicrnAQv55N76owM
a=fingerprint:sha-256 {FP256}
a=setup:actpass
""".replace("\n", "\r\n")

CHROME_CANDIDATE = (
    "a=candidate:2999745851 1 udp 2122260223 4a1f7f3e-0c5d-4b1e-9e3c-1c2d3e4f5a6b.local 54400 "
    "typ host generation 0 network-id 1 network-cost 10"
)
CHROME_OFFER = f"""v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 3b1f4a0e-5d0b-4b6b-9d6e-2f6a3d1e8c11
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
{CHROME_CANDIDATE}
a=ice-ufrag:8hhY
a=ice-pwd:asd88fgpdd777uzjYhagZg22
a=ice-options:trickle
a=fingerprint:sha-256 {FP256}
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:3b1f4a0e-5d0b-4b6b-9d6e-2f6a3d1e8c11 9a0c2e3f-1b2d-4c5e-8f6a-7b8c9d0e1f2a
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1917458381 cname:Yq1bXo0c+F2d9sK3
a=ssrc:1917458381 msid:3b1f4a0e-5d0b-4b6b-9d6e-2f6a3d1e8c11 9a0c2e3f-1b2d-4c5e-8f6a-7b8c9d0e1f2a
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=ice-ufrag:8hhY
a=ice-pwd:asd88fgpdd777uzjYhagZg22
a=ice-options:trickle
a=fingerprint:sha-256 {FP256}
a=setup:actpass
a=mid:1
a=sctp-port:5000
a=max-message-size:262144
""".replace("\n", "\r\n")

FIREFOX_OFFER = f"""v=0
o=mozilla...THIS_IS_SDPARTA-99.0 3567246528484962893 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 {FP256}
a=group:BUNDLE 0 1
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:f2b4e8a1c3d5e7f9a1b3c5d7e9f1a3b5
a=ice-ufrag:0a1b2c3d
a=mid:0
a=msid:{{5e6f7a8b-1c2d-4e5f-8a9b-0c1d2e3f4a5b}} {{7a8b9c0d-2e3f-4a5b-9c0d-1e2f3a4b5c6d}}
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=setup:actpass
a=ssrc:2655508255 cname:{{735484ea-4f6c-f74a-bd66-7425f8476c2e}}
m=application 9 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP4 0.0.0.0
a=sendrecv
a=ice-pwd:f2b4e8a1c3d5e7f9a1b3c5d7e9f1a3b5
a=ice-ufrag:0a1b2c3d
a=mid:1
a=setup:actpass
a=sctp-port:5000
a=max-message-size:1073741823
""".replace("\n", "\r\n")

OFFERS = {"aiortc": AIORTC_OFFER, "chrome": CHROME_OFFER, "firefox": FIREFOX_OFFER}
