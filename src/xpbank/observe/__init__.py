"""What every process observes of itself: counters and latency histograms."""
