"""Turn-taking for interviews, as a pure state machine over 32 ms VAD decisions.

People pause to think in the middle of an answer, so the end of a turn needs a long
silence (``end_silence_s``, about 1.2 to 2 s); a short "mm-hm" over the interviewer is
not an interruption, so barge-in needs ``barge_in_s`` of speech (about 0.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from interview_service.voice.providers import VAD_CHUNK, VAD_RATE

CHUNK_S = VAD_CHUNK / VAD_RATE  # one VAD decision: 32 ms


class Signal(Enum):
    NONE = "none"
    SPEECH_STARTED = "speech_started"
    BARGE_IN = "barge_in"  # enough candidate speech while the interviewer talks
    END_OF_TURN = "end_of_turn"  # the candidate spoke, then was silent long enough


@dataclass(slots=True)
class TurnTakingConfig:
    end_silence_s: float = 1.4
    barge_in_s: float = 0.5
    min_speech_s: float = 0.25  # shorter bursts (a cough, a click) are not a turn
    start_threshold: float = 0.5
    stop_threshold: float = 0.35


class TurnDetector:
    def __init__(self, config: TurnTakingConfig) -> None:
        self.config = config
        self.in_speech = False  # the candidate is mid-utterance (maybe pausing)
        self.voiced = False  # the last chunk was speech
        self.speech_s = 0.0  # voiced time in this utterance
        self.silence_s = 0.0  # silence since the last voiced chunk
        self.burst_s = 0.0  # voiced time since the interviewer started talking
        self.now_s = 0.0  # stream time, in chunks
        self.last_voiced_at = 0.0

    def push(self, probability: float, *, interviewer_speaking: bool) -> Signal:
        """One chunk's speech probability; returns what it means for the conversation."""
        cfg = self.config
        self.now_s += CHUNK_S
        threshold = cfg.stop_threshold if self.voiced else cfg.start_threshold
        self.voiced = probability >= threshold
        if not interviewer_speaking:
            self.burst_s = 0.0
        if self.voiced:
            self.last_voiced_at = self.now_s
            self.silence_s = 0.0
            self.speech_s += CHUNK_S
            if interviewer_speaking:
                self.burst_s += CHUNK_S
                if self.burst_s >= cfg.barge_in_s:
                    self.burst_s = 0.0
                    self.in_speech = True
                    return Signal.BARGE_IN
                return Signal.NONE
            if not self.in_speech:
                self.in_speech = True
                return Signal.SPEECH_STARTED
            return Signal.NONE
        self.silence_s += CHUNK_S
        if interviewer_speaking:
            # Brief backchannel ("mm-hm") decays instead of adding up across the line.
            self.burst_s = max(0.0, self.burst_s - CHUNK_S / 2)
        if self.in_speech and self.silence_s >= cfg.end_silence_s:
            long_enough = self.speech_s >= cfg.min_speech_s
            self.in_speech = False
            self.speech_s = 0.0
            return Signal.END_OF_TURN if long_enough else Signal.NONE
        return Signal.NONE
