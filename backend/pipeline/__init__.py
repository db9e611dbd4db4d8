"""The video pipeline (CONTRACT §2.2): a prompt becomes a narrated MP4, agents reporting live.

- :mod:`.settings`      PipelineSettings (PIPELINE_*, MEDIA_DIR, S3_*)
- :mod:`.options`       what a client may ask for, validated
- :mod:`.script`        the script: scenes with narration, title, visual, target seconds
- :mod:`.local_writer`  a template script writer (no model; says so)
- :mod:`.espeak`        local speech with espeak-ng, measured
- :mod:`.slides`        Pillow slides: title, wrapped text, one style per video
- :mod:`.captions`      WebVTT cues that follow the narration
- :mod:`.encoder`       PyAV's bundled FFmpeg: H.264 + AAC MP4, +faststart
- :mod:`.render_process` slides and encoding in a child process (the loop stays free)
- :mod:`.agents`        the five agents, each one step of the run
- :mod:`.local_media`   published files under MEDIA_DIR, served at /media
- :mod:`.state`         a run's stored step outputs (resume without recomputing)
- :mod:`.runner`        runs the steps in order, reports, retries, cancels
- :mod:`.embedded`      the engine without Redis: runs inside the service process

It knows nothing of HTTP: it raises :mod:`backend.core.errors` and reports through the
hub's publish function it is given.
"""
