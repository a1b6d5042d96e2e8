//! Shared helpers of the benchmark suite (corpus loading, allocation counting).
