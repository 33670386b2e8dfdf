"""The SLO autoscaler of InferenceServices: a queueing model learned online, sizing against
latency objectives, stabilised against flapping (pure; time is passed in). docs/inference.md."""
