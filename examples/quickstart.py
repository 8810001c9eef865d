"""Quick-start: add phasewatch's callbacks to a Trainer that trains a tiny GPT-2 from scratch.

Run from the repository root: `.venv/bin/python examples/quickstart.py` (41 s on this 2-core CPU).
Data come from $PHASEWATCH_DATA (e.g. ../shared/corpora), else a verified download.
"""

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

import phasewatch as pw
from phasewatch.demo.config import DemoConfig

config = DemoConfig().with_(max_steps=100)  # a 2-layer GPT-2 on 25 public-domain novels
data = config.data_module()  # trains (once, then cached) a byte-level BPE on the novels
model = config.model()  # a LightningModule whose `self.model` is a GPT2LMHeadModel

trainer = L.Trainer(
    **config.trainer_kwargs(),
    logger=TensorBoardLogger("runs", name="quickstart"),
    callbacks=[
        pw.PPPMonitor(),  # ppp/delta_ll ± ppp/delta_ll_se (nats/word) on Natural Stories
        pw.AttentionMonitor(),  # heads/induction_max, ..., attn/entropy_mean, heatmaps
        pw.TransitionMonitor(),  # alerts on an abrupt, sustained jump of heads/induction_max
        pw.PeakMonitor(),  # keeps ppp_peak.ckpt at the best PPP so far
    ],
)
trainer.fit(model, datamodule=data)
print(trainer.callback_metrics["ppp/delta_ll"])  # the last PPP, nats/word
