"""A fixed word-error-rate set: a candidate's answers full of technical terms.

The sentences are kept as text; their audio is made at test or bench time by espeak-ng
(deterministic: the same text gives the same samples), at the service's 48 kHz, then
brought to STT's 16 kHz by the same resampler the listener uses.

``INTERVIEW`` is the interview the answers belong to: its role, job description and
questions are what the vocabulary prompt is built from. It names many of the terms (a
job description does) but none of the sentences; some terms in the answers are in it
nowhere (Jenkins, microservices, circuit breaker), as in a real interview.
"""

from __future__ import annotations

import asyncio

import av
import numpy as np

from interview_service.espeak import EspeakVoice
from interview_service.voice.providers import VAD_RATE

SENTENCES = (
    "We run every service on Kubernetes with Helm charts and autoscaling.",
    "Our main database is PostgreSQL with logical replication to a read replica.",
    "The payment handler has to be idempotent because the queue delivers messages at least once.",
    "I designed a distributed cache in front of the inventory service.",
    "The services talk to each other over gRPC with protocol buffers.",
    "We manage the whole infrastructure with Terraform modules and remote state.",
    "Kafka topics are partitioned by customer so the ordering is preserved.",
    "I moved the deployment pipeline from Jenkins to GitHub Actions.",
    "Redis holds the session data and a sorted set for the leaderboard.",
    "We traced slow requests with OpenTelemetry and Jaeger.",
    "Prometheus scrapes the metrics and Grafana shows the dashboards.",
    "The API gateway validates the JSON web tokens before routing the request.",
    "Eventual consistency was acceptable for the recommendation feed.",
    "We shard the PostgreSQL tables by tenant to keep the indexes small.",
    "A circuit breaker stops the retries when the downstream service is unhealthy.",
    "The Kubernetes operator reconciles the desired state every few seconds.",
    "I wrote the ingestion workers in Rust and the dashboards in TypeScript.",
    "Our distributed tracing showed that serialization was the bottleneck.",
    "We put the legacy monolith in Docker containers before splitting it into microservices.",
    "The message consumer is idempotent so a replayed event changes nothing.",
    "Terraform plans run in the pipeline and a reviewer approves every apply.",
    "We use gRPC streaming for the live notifications.",
    "Elasticsearch indexes the logs and the on-call engineer searches them.",
    "The scheduler takes a distributed lock in Redis with a short lease.",
)

# The sentences with the terms the base model misheard without a prompt ("Kubernetes" as
# "Cuban It's", "distributed" as "remuted"), and a few more of the hardest terms.
HARD = (0, 1, 2, 3, 4, 5, 15, 17, 19, 21)

# The technical terms of the sentences (as ``wer.words`` spells them): how many of them
# a model heard is the figure a reader of an interview's transcript notices first.
TERMS = frozenset(
    {
        "kubernetes", "helm", "postgresql", "idempotent", "distributed", "grpc",
        "terraform", "kafka", "jenkins", "github", "redis", "opentelemetry", "jaeger",
        "prometheus", "grafana", "api", "json", "rust", "typescript", "docker",
        "microservices", "elasticsearch",
    }
)  # fmt: skip

ROLE = "Senior platform engineer"
JOB_DESCRIPTION = """\
We run a distributed platform on Kubernetes and Helm, with PostgreSQL, Redis, Kafka and
Elasticsearch behind it.
- Infrastructure as code with Terraform
- Services talk over gRPC; observability is Prometheus, Grafana, OpenTelemetry and Jaeger
- Idempotent, well-tested services in Rust, Go and TypeScript, shipped with GitHub Actions
  and Docker
"""
QUESTIONS = (
    "Tell me about a distributed system you built and operated.",
    "How do you make a message consumer idempotent?",
    "How would you run PostgreSQL on Kubernetes, and would you?",
    "How do you find out where a slow request spends its time?",
)


async def synthesize(texts: tuple[str, ...] = SENTENCES) -> list[np.ndarray]:
    """16 kHz mono float32 audio of each text, spoken by espeak-ng."""
    voice = EspeakVoice()
    if not voice.available:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    pcm = await asyncio.gather(*(voice.synthesize(text) for text in texts))
    return [to_16k(piece) for piece in pcm]


def to_16k(pcm48k: bytes) -> np.ndarray:
    """s16 mono 48 kHz PCM to float32 16 kHz, through PyAV's resampler as the listener."""
    samples = np.frombuffer(pcm48k, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = 48_000
    resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)
