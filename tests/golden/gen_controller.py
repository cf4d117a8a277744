"""Golden files for the AutoGAN controller (LSTM policy) and its REINFORCE loss:
tests/golden/data/controller_s<stage>.safetensors.

Run with Debian's python (torch 1.13):  /usr/bin/python3 tests/golden/gen_controller.py
The controller follows /work/shared/AUTOGAN-SPEC.md section 4 and the authors'
models_search/controller.py (same module names, so the same state_dict keys): an LSTMCell,
an embedding over every token choice of the stage, a linear decoder per token, PyTorch's
default initialisers. The pass is teacher-forced on given actions from given (h0, c0):
the first input is a zero vector, then embedding(action + offset of the token). The loss
is the textbook REINFORCE form: -sum_b sum_t log p(a_bt) * adv_b - coeff * sum_b sum_t H_bt.
When the reference tree is at /work/ref, its Controller.forward is checked to give the
same logits.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")
HID = 100
COEFF = 1e-3


class Controller(nn.Module):
    def __init__(self, stage, hid=HID):
        super().__init__()
        self.tokens = [2, 3, 3, 2] + ([2 ** stage] if stage else [])
        self.lstm = nn.LSTMCell(hid, hid)
        self.encoder = nn.Embedding(sum(self.tokens), hid)
        self.decoders = nn.ModuleList([nn.Linear(hid, t) for t in self.tokens])

    def run(self, actions, h0, c0):
        b = actions.shape[0]
        x = torch.zeros(b, self.lstm.hidden_size)
        hidden = (h0, c0)
        logits, lps, ents = [], [], []
        for i in range(len(self.tokens)):
            embed = x if i == 0 else self.encoder(x)
            hidden = self.lstm(embed, hidden)
            logit = self.decoders[i](hidden[0])
            lp = F.log_softmax(logit, dim=-1)
            logits.append(logit)
            lps.append(lp)
            ents.append(-(lp.exp() * lp).sum(1))
            x = actions[:, i] + sum(self.tokens[:i])
        return logits, lps, torch.stack(ents, 1), hidden


def case(stage, seed, batch):
    torch.manual_seed(seed)
    ctrl = Controller(stage)
    T = len(ctrl.tokens)
    actions = torch.stack([torch.randint(0, t, (batch,)) for t in ctrl.tokens], 1)
    if stage:
        h0 = torch.randn(batch, HID) * 0.5
        c0 = torch.randn(batch, HID) * 0.5
    else:
        h0 = torch.zeros(batch, HID)
        c0 = torch.zeros(batch, HID)
    adv = torch.randn(batch)
    logits, lps, ents, (h, c) = ctrl.run(actions, h0, c0)
    sel = torch.stack([lps[i].gather(1, actions[:, i:i + 1])[:, 0] for i in range(T)], 1)
    loss = -(sel * adv[:, None]).sum() - COEFF * ents.sum()
    loss.backward()

    if os.path.isdir("/work/ref/models_search"):
        sys.path.insert(0, "/work/ref")
        from models_search.controller import Controller as RefController

        class A:
            hid_size = HID
        ref = RefController(A(), stage)
        ref.load_state_dict(ctrl.state_dict())
        hidden = (h0, c0)
        x = torch.zeros(batch, HID)
        for i in range(T):
            logit, hidden = ref.forward(x, hidden, i)
            assert torch.allclose(logit, logits[i], atol=1e-6), "reference controller differs"
            x = actions[:, i] + sum(ref.tokens[:i])

    out = {}
    for k, v in ctrl.state_dict().items():
        out["param." + k] = v
    for k, p in ctrl.named_parameters():
        out["grad." + k] = p.grad
    out["actions"] = actions
    out["h0"] = h0
    out["c0"] = c0
    out["advantage"] = adv
    for i in range(T):
        out["logits.%d" % i] = logits[i]
        out["log_probs.%d" % i] = lps[i]
    out["selected_log_probs"] = sel
    out["entropies"] = ents
    out["h"] = h
    out["c"] = c
    out["loss"] = loss.reshape(1)
    path = os.path.join(OUT, "controller_s%d.safetensors" % stage)
    st.save(path, out, meta={"stage": str(stage), "batch": str(batch), "entropy_coeff": repr(COEFF)})
    print("wrote", path)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    case(0, 11, 3)
    case(1, 12, 4)
    case(2, 13, 5)
