"""Turn-taking for interviews, as a pure state machine over 32 ms VAD decisions.

The candidate's side: speech starts; a short silence (``pause_s``) is a *pause* that the
decide stage judges (the end-of-turn model and the words so far) and answers with how
much silence ends the turn (:meth:`TurnDetector.end_after`): a little when the answer
reads finished, up to ``max_silence_s`` when it reads unfinished, so people may think
for seconds in the middle of a sentence. Speech after a pause *resumes* the utterance.

Over the interviewer: ``hold_s`` of speech holds its audio at once (the candidate hears
it stop), ``barge_in_s`` of speech makes it an *interruption* to be confirmed by its
words; a burst that stops sooner (a "mm-hm", a cough) *releases* the hold and the line
goes on where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from interview_service.voice.providers import VAD_CHUNK, VAD_RATE

CHUNK_S = VAD_CHUNK / VAD_RATE  # one VAD decision: 32 ms


class Signal(Enum):
    NONE = "none"
    SPEECH_STARTED = "speech_started"
    PAUSED = "paused"  # pause_s of silence after speech: judge whether the turn is over
    RESUMED = "resumed"  # speech again after a pause: the same utterance goes on
    END_OF_TURN = "end_of_turn"  # silent for as long as the judge asked
    HOLD = "hold"  # speech over the interviewer: stop its audio, keep its line
    RELEASE = "release"  # the speech over it stopped short: let it go on
    INTERRUPT = "interrupt"  # barge_in_s of speech over it: check the words


@dataclass(slots=True)
class TurnTakingConfig:
    pause_s: float = 0.16  # a pause the end-of-turn judge looks at
    rejudge_s: tuple[float, ...] = (0.5, 1.0)  # and looks at again, as the silence grows
    max_silence_s: float = 3.0  # the turn ends after this much silence whatever it says
    hold_s: float = 0.19  # speech over the interviewer that holds its audio
    barge_in_s: float = 1.0  # ... that is checked as an interruption (backchannels are shorter)
    release_s: float = 0.3  # silence that ends a burst over the interviewer
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
        self.paused = False  # PAUSED was signalled for the current silence
        self.judged = 0  # how many times PAUSED was signalled for it
        self.end_silence_s = config.max_silence_s  # what the judge asked for this pause
        self.burst_s = 0.0  # voiced time over the interviewer
        self.holding = False
        self.interrupting = False  # INTERRUPT signalled, the words are being checked

    def end_after(self, silence_s: float) -> None:
        """The judge's verdict on this pause: end the turn after this much silence."""
        self.end_silence_s = min(silence_s, self.config.max_silence_s)

    def settle_interruption(self, *, real: bool) -> None:
        """The words were checked: a real interruption is the candidate's turn now."""
        self.interrupting = False
        self.holding = False
        self.burst_s = 0.0
        if real:
            self.in_speech = True
            self.paused = False
            self.end_silence_s = self.config.max_silence_s
        else:
            self._reset_utterance()

    def push(self, probability: float, *, interviewer_speaking: bool) -> Signal:
        """One chunk's speech probability; returns what it means for the conversation."""
        cfg = self.config
        threshold = cfg.stop_threshold if self.voiced else cfg.start_threshold
        self.voiced = probability >= threshold
        if self.voiced:
            self.silence_s = 0.0
            self.speech_s += CHUNK_S
        else:
            self.silence_s += CHUNK_S
        if interviewer_speaking or self.interrupting:
            return self._over_interviewer()
        self.burst_s = 0.0
        self.holding = False
        if self.voiced:
            if not self.in_speech:
                self.in_speech = True
                self.speech_s = CHUNK_S
                self.paused = False
                self.end_silence_s = cfg.max_silence_s
                return Signal.SPEECH_STARTED
            if self.paused:
                self.paused = False
                self.end_silence_s = cfg.max_silence_s
                return Signal.RESUMED
            return Signal.NONE
        if not self.in_speech:
            return Signal.NONE
        if self.speech_s < cfg.min_speech_s:
            if self.silence_s >= cfg.pause_s:
                self._reset_utterance()  # a cough, a click: no turn
            return Signal.NONE
        if self.silence_s >= self.end_silence_s:
            self._reset_utterance()
            return Signal.END_OF_TURN
        if not self.paused and self.silence_s >= cfg.pause_s:
            self.paused = True
            self.judged = 1
            return Signal.PAUSED
        again = self.paused and self.judged <= len(cfg.rejudge_s)
        if again and self.silence_s >= cfg.rejudge_s[self.judged - 1]:
            self.judged += 1
            return Signal.PAUSED  # the model hears more silence now: ask again
        return Signal.NONE

    def _over_interviewer(self) -> Signal:
        cfg = self.config
        if self.interrupting:
            return Signal.NONE  # until settle_interruption
        if self.voiced:
            self.burst_s += CHUNK_S
            if self.burst_s >= cfg.barge_in_s:
                self.interrupting = True
                return Signal.INTERRUPT
            if self.burst_s >= cfg.hold_s and not self.holding:
                self.holding = True
                return Signal.HOLD
            return Signal.NONE
        if self.silence_s >= cfg.release_s and self.burst_s > 0:
            self.burst_s = 0.0
            self._reset_utterance()
            if self.holding:
                self.holding = False
                return Signal.RELEASE
        return Signal.NONE

    def _reset_utterance(self) -> None:
        self.in_speech = False
        self.paused = False
        self.speech_s = 0.0
        self.end_silence_s = self.config.max_silence_s
