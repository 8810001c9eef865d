"""The demo's training side: novels, a small BPE tokenizer, mixed data, and a tiny GPT-2.

``phasewatch.demo.config.DemoConfig`` holds the measured defaults (see ``docs/demo-config.md``).
"""
