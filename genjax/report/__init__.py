"""What a run writes: files (`files`: the one atomic writer, JSON, JSONL), `plots` (learning
curves), `tensorboard` (event files) and `tables` (markdown)."""
