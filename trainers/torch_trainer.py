#!/usr/bin/python3
"""A dbc external trainer in PyTorch (protocol 2 of docs/external-trainer.md), on stdin/stdout.

It trains the MLP the node names in `hello.model` (784-H-10, ReLU) in the layout the built-in
trainer shares: torch.nn.utils.parameters_to_vector of Sequential(Linear, ReLU, Linear), so a
PyTorch member and a built-in member average the same numbers. The data is the member's shard
and the test set the node sends in `load_data` (the trainer runs isolated and reads no files).

Needs /usr/bin/python3 with Debian's python3-torch, python3-numpy and python3-msgpack
(scripts/setup-torch.sh). Options:
  --device auto|cpu|cuda   where to train (default auto: cuda when torch sees a GPU)
  --threads N              CPU threads for torch (default: torch's own choice)
  --hidden N               hidden units when a job names this trainer (`kind: external`); default 64
"""
import argparse
import struct
import sys

import msgpack
import numpy as np
import torch

PROTOCOL_VERSION = 2


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--hidden', type=int, default=64)
    return p.parse_args()


class Trainer:
    def __init__(self, args):
        self.args = args
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        want_cuda = args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise RuntimeError('--device cuda, but this torch build sees no CUDA device')
        self.dev = torch.device('cuda' if want_cuda else 'cpu')
        self.model = None
        self.opt = None
        self.train = None
        self.test = None

    def hello(self, req):
        version = int(req.get('version', 1))
        if version < PROTOCOL_VERSION:
            raise RuntimeError(f'the node speaks protocol {version}; this trainer needs {PROTOCOL_VERSION}')
        spec = req.get('model') or {}
        inputs = int(spec.get('inputs', 784))
        hidden = int(spec.get('hidden', self.args.hidden)) if spec.get('kind') == 'mlp' else self.args.hidden
        outputs = int(spec.get('outputs', 10))
        seed = int(req.get('seed', 1))
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs)
        ).to(self.dev)
        # the built-in trainer's SGD: v = momentum * v + grad; p -= lr * v (torch's, dampening 0)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=float(req.get('learning_rate', 0.1)),
                                   momentum=float(req.get('momentum', 0.9)))
        self.batch_size = int(req.get('batch_size', 32))
        # this member's own sample order: epochs of seeded permutations, as the built-in trainer draws
        self.gen = torch.Generator().manual_seed((seed * 7919 + int(req.get('rank', 0)) + 1) % (2 ** 32))
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        return {'param_count': self.flat().numel(), 'device': str(self.dev)}

    def load_data(self, req):
        features = int(req['features'])

        def part(x, y):
            xs = torch.from_numpy(np.frombuffer(x, dtype='<f4').reshape(-1, features).copy())
            ys = torch.from_numpy(np.frombuffer(y, dtype=np.uint8).astype(np.int64))
            if xs.shape[0] != ys.shape[0]:
                raise ValueError(f'{xs.shape[0]} samples but {ys.shape[0]} labels')
            return xs.to(self.dev), ys.to(self.dev)

        self.train = part(req['train_x'], req['train_y'])
        self.test = part(req['test_x'], req['test_y'])
        return {'samples': int(self.train[1].shape[0])}

    def flat(self):
        return torch.nn.utils.parameters_to_vector(self.model.parameters()).detach()

    def get_params(self):
        return {'params': self.flat().float().cpu().numpy().astype('<f4').tobytes()}

    def set_flat(self, values):
        if values.size != self.flat().numel():
            raise ValueError(f'{values.size} parameters given, the model has {self.flat().numel()}')
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.from_numpy(values.copy()).to(self.dev), self.model.parameters())

    def set_params(self, req):
        self.set_flat(np.frombuffer(req['params'], dtype='<f4'))
        return {}

    def push_update(self, req):
        self.set_flat(self.flat().cpu().numpy() + np.frombuffer(req['delta'], dtype='<f4'))
        return {}

    def next_batch(self, n):
        # epochs over the shard, each in a fresh seeded order (sampling without replacement)
        count = self.train[1].shape[0]
        picks, have = [], 0
        while have < n:
            if self.cursor >= self.order.numel():
                self.order = torch.randperm(count, generator=self.gen)
                self.cursor = 0
            take = min(n - have, self.order.numel() - self.cursor)
            picks.append(self.order[self.cursor:self.cursor + take])
            self.cursor += take
            have += take
        return torch.cat(picks).to(self.dev)

    def step(self, req):
        if self.train is None:
            raise RuntimeError('no data: the node sends load_data after hello')
        steps = int(req['steps'])
        x, y = self.train
        bs = min(self.batch_size, y.shape[0])
        total = 0.0
        self.model.train()
        for _ in range(steps):
            idx = self.next_batch(bs)
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(x[idx]), y[idx])
            loss.backward()
            self.opt.step()
            total += loss.item()
        return {'loss': total / max(1, steps), 'samples': steps * bs}

    def evaluate(self, req):
        if self.test is None:
            raise RuntimeError('no data: the node sends load_data after hello')
        x, y = self.test
        self.model.eval()
        with torch.no_grad():
            logits = self.model(x)
            return {'loss': torch.nn.functional.cross_entropy(logits, y).item(),
                    'accuracy': (logits.argmax(1) == y).float().mean().item()}


def main():
    args = parse_args()
    inp, out = sys.stdin.buffer, sys.stdout.buffer

    def read_frame():
        head = inp.read(4)
        if len(head) < 4:
            return None
        (n,) = struct.unpack('>I', head)
        body = inp.read(n)
        if len(body) < n:
            return None
        return msgpack.unpackb(body, raw=False)

    def write_frame(msg):
        body = msgpack.packb(msg, use_bin_type=True)
        out.write(struct.pack('>I', len(body)) + body)
        out.flush()

    trainer = Trainer(args)
    ops = {'hello': trainer.hello, 'load_data': trainer.load_data, 'get_params': lambda r: trainer.get_params(),
           'set_params': trainer.set_params, 'push_update': trainer.push_update, 'step': trainer.step,
           'evaluate': trainer.evaluate}
    while (req := read_frame()) is not None:
        op, rid = req.get('op'), req.get('id')
        if op == 'shutdown':
            write_frame({'id': rid, 'ok': True})
            break
        try:
            if op not in ops:
                raise ValueError(f'unknown op {op}')
            write_frame({'id': rid, 'ok': True, **ops[op](req)})
        except Exception as e:  # the node gets the reason instead of a dead pipe
            print(f'torch_trainer: {op} failed: {e!r}', file=sys.stderr, flush=True)
            write_frame({'id': rid, 'ok': False, 'error': repr(e)})


if __name__ == '__main__':
    main()
