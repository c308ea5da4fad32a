#!/usr/bin/python3
"""Learning curves of skeleton recovery for the demo's pix2pix on the demo's phantoms (issue 14 #2).

The library's networks and training step match PyTorch's pix2pix (the parity tests), and Debian's CPU torch
runs a step of these tiny networks about as fast as the library on lavapipe, so this script measures, in
minutes instead of hours, what a demo setting reaches: skeleton recovery on the held-out animals (and on
training images) against training steps. It is a measuring tool, not part of the package; CI never runs it.

Data: scripts/skeleton_export.ts writes the demo's phantoms (photo, X-ray, body mask, bone layer), 8-bit
rounded as the demo's PNGs; --extra adds the training pairs of another export (more animals).

  python3 scripts/skeleton_experiments.py --data /tmp/h14/demo --steps 8000 --eval-every 1000 --out /tmp/h14/run1
  python3 scripts/skeleton_experiments.py --check /tmp/h14/demo   # the metric port against skeletonRecovery

More animals (issue 14 #2, second round): export other animals as training pairs with another data seed and
add them; the held-out images stay the demo export's.

  npx vite-node scripts/skeleton_export.ts -- /tmp/h14/extra200 --animals 200 --seed 1 --all-train
  python3 scripts/skeleton_experiments.py --data /tmp/h14/demo --extra /tmp/h14/extra200 --ndf 4 \
      --lambda-l1 10000 --dropout 0 --steps 15400 --eval-every 1400 --out /tmp/h14/x1110

The metric (src/metrics/skeleton.ts): Pearson correlation, inside the body eroded by `erode` px (a cross),
of the band-passed translation (box mean of radius `inner` minus box mean of radius `outer`, clipped at the
border) with the band-passed bone layer. 64x128: inner 1, outer 2, erode 2.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np


# ------------------------------------------------------------------------------------------- the metric
def box_mean(d, r):
    """(2r+1)^2 box mean clipped at the border (the window shrinks), as skeleton.ts's boxMean."""
    if r <= 0:
        return d.astype(np.float64).copy()
    h, w = d.shape
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = np.cumsum(np.cumsum(d.astype(np.float64), 0), 1)
    y = np.arange(h)
    x = np.arange(w)
    y0 = np.maximum(0, y - r)[:, None]
    y1 = np.minimum(h, y + r + 1)[:, None]
    x0 = np.maximum(0, x - r)[None, :]
    x1 = np.minimum(w, x + r + 1)[None, :]
    tot = s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0]
    return tot / ((y1 - y0) * (x1 - x0))


def band_pass(d, inner, outer):
    if inner <= 0:
        return d - box_mean(d, outer)
    return box_mean(d, inner) - box_mean(d, outer)


def eroded(mask, e):
    h, w = mask.shape
    m = mask > 0.5
    ok = np.zeros_like(m)
    core = np.ones((h - 2 * e, w - 2 * e), bool)
    for k in range(-e, e + 1):
        core &= m[e + k:h - e + k, e:w - e] & m[e:h - e, e + k:w - e + k]
    ok[e:h - e, e:w - e] = core
    return ok


def scale_for(width, fov=100.0):
    mm = fov / width
    radius = max(2, round(1.6 / mm))
    return max(1, round(0.4 / mm)), radius, radius


def skeleton(img, bone, body, scale=None):
    """skeletonRecovery of a gray [0,1] image (H x W) against the bone layer inside the eroded body."""
    inner, outer, e = scale or scale_for(img.shape[1])
    idx = eroded(body, e)
    a = band_pass(img, inner, outer)[idx]
    b = band_pass(bone, inner, outer)[idx]
    if a.size == 0:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    sa, sb = (a * a).sum(), (b * b).sum()
    return float((a * b).sum() / math.sqrt(sa * sb)) if sa > 0 and sb > 0 else 0.0


def write_png(path, gray):
    """8-bit gray PNG of a [0,1] array (no PIL on the box)."""
    import struct
    import zlib
    h, w = gray.shape
    raw = b''.join(b'\x00' + bytes(row) for row in (gray * 255 + 0.5).astype(np.uint8))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


# ------------------------------------------------------------------------------------------------ data
def load(d):
    meta = json.load(open(os.path.join(d, 'meta.json')))
    n, h, w = meta['n'], meta['height'], meta['width']
    f = lambda name, c: np.fromfile(os.path.join(d, name), dtype='<f4').reshape(n, c, h, w)
    return meta, f('photo.f32', 3), f('xray.f32', 1), f('body.f32', 1), f('bone.f32', 1)


def check(d):
    meta, photo, xray, body, bone = load(d)
    worst = 0.0
    for i, e in enumerate(meta['entries']):
        luma = 0.299 * photo[i, 0] + 0.587 * photo[i, 1] + 0.114 * photo[i, 2]
        for img, ref in ((xray[i, 0], e['skeletonXray']), (luma, e['skeletonLuma'])):
            worst = max(worst, abs(skeleton(img, bone[i, 0], body[i, 0]) - ref))
    test = [i for i, e in enumerate(meta['entries']) if e['split'] == 'test']
    print(f'{len(meta["entries"])} images: largest |python - skeletonRecovery| = {worst:.2e}')
    print(f'test X-ray {np.mean([meta["entries"][i]["skeletonXray"] for i in test]):.3f}, photo {np.mean([meta["entries"][i]["skeletonLuma"] for i in test]):.3f}')
    return worst


# ------------------------------------------------------------------------------------------ networks
def build(args):
    import torch
    import torch.nn as nn

    def norm_layer(c):
        if args.norm == 'batch':
            return nn.BatchNorm2d(c)
        if args.norm == 'instance':
            return nn.InstanceNorm2d(c)
        if args.norm == 'group':
            g = max(k for k in range(1, min(c, args.groups) + 1) if c % k == 0)
            return nn.GroupNorm(g, c)
        return nn.Identity()

    use_bias = args.norm != 'batch'

    class Block(nn.Module):
        """The reference's UnetSkipConnectionBlock."""

        def __init__(self, outer_nc, inner_nc, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
            super().__init__()
            self.outermost = outermost
            input_nc = input_nc or outer_nc
            downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
            downrelu = nn.LeakyReLU(0.2, True)
            uprelu = nn.ReLU(True)
            if outermost:
                upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
                model = [downconv, sub, uprelu, upconv, nn.Tanh()]
            elif innermost:
                upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias)
                model = [downrelu, downconv, uprelu, upconv, norm_layer(outer_nc)]
            else:
                upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias)
                model = [downrelu, downconv, norm_layer(inner_nc), sub, uprelu, upconv, norm_layer(outer_nc)] + ([nn.Dropout(0.5)] if dropout else [])
            self.model = nn.Sequential(*model)

        def forward(self, x):
            return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)

    ngf = args.ngf
    # Channel multiplier per level from the outside in: the reference's 1, 2, 4, 8, 8, ...; --wide-outer
    # overrides the outer levels' multipliers.
    mults = [1, 2, 4] + [8] * (args.downs - 3)
    if args.mults:
        mults = [int(v) for v in args.mults.split(',')]
        assert len(mults) == args.downs
    chans = [ngf * m for m in mults]
    # innermost: chans[-1] -> chans[-1]
    blk = Block(chans[-2], chans[-1], innermost=True)
    for lvl in range(args.downs - 2, 0, -1):
        # The reference: levels 4 .. downs-2 (ngf*8 -> ngf*8, inside the first four) carry dropout.
        drop = bool(args.dropout) and lvl >= 4
        blk = Block(chans[lvl - 1], chans[lvl], sub=blk, dropout=drop)
    G = Block(1, chans[0], input_nc=3, sub=blk, outermost=True)

    kw = 4
    ndf = args.ndf
    seq = [nn.Conv2d(4, ndf, kw, 2, 1), nn.LeakyReLU(0.2, True)]
    m = 1
    for n in range(1, 3):
        mp, m = m, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * mp, ndf * m, kw, 2, 1, bias=use_bias), norm_layer(ndf * m), nn.LeakyReLU(0.2, True)]
    mp, m = m, 8
    seq += [nn.Conv2d(ndf * mp, ndf * m, kw, 1, 1, bias=use_bias), norm_layer(ndf * m), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * m, 1, kw, 1, 1)]
    D = nn.Sequential(*seq)

    def init(mod):
        cn = mod.__class__.__name__
        if hasattr(mod, 'weight') and ('Conv' in cn):
            nn.init.normal_(mod.weight, 0.0, 0.02)
            if mod.bias is not None:
                nn.init.constant_(mod.bias, 0.0)
        elif 'BatchNorm2d' in cn or 'GroupNorm' in cn:
            nn.init.normal_(mod.weight, 1.0, 0.02)
            nn.init.constant_(mod.bias, 0.0)

    G.apply(init)
    D.apply(init)
    return G, D


def conv_macs(G, D, h, w):
    """Multiply-adds of one forward pass of G and of D at h x w (the library's step cost scales with these)."""
    import torch
    count = [0]

    def hook(mod, inp, out):
        k = mod.weight.numel() // (mod.weight.shape[0] if mod.__class__.__name__ == 'Conv2d' else mod.weight.shape[1])
        # Conv2d: out pixels x out channels x (in/groups x kh x kw); ConvTranspose2d: in pixels x weight size.
        if mod.__class__.__name__ == 'Conv2d':
            count[0] += out.numel() * k
        else:
            count[0] += inp[0].numel() * mod.weight.numel() // mod.weight.shape[0]

    hs = [m.register_forward_hook(hook) for m in list(G.modules()) + list(D.modules()) if m.__class__.__name__ in ('Conv2d', 'ConvTranspose2d')]
    res = []
    with torch.no_grad():
        count[0] = 0
        G(torch.zeros(1, 3, h, w))
        res.append(count[0])
        count[0] = 0
        D(torch.zeros(1, 4, h, w))
        res.append(count[0])
    for x in hs:
        x.remove()
    return res


def random_flip(rng, a, b, dim):
    """Flip each pair of the batch along `dim` with probability 1/2 (photo and X-ray alike)."""
    fl = rng.random(a.shape[0]) < 0.5
    if fl.any():
        a = a.clone()
        b = b.clone()
        a[fl] = a[fl].flip(dim)
        b[fl] = b[fl].flip(dim)
    return a, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--check', help='compare the metric port with the exported skeletonRecovery values')
    ap.add_argument('--data')
    ap.add_argument('--extra', action='append', default=[], help='another export whose training pairs are added')
    ap.add_argument('--extra-pairs', type=int, default=0, help='use only this many extra pairs (0: all)')
    ap.add_argument('--train-pairs', type=int, default=0, help='use only the first N demo training pairs (0: all)')
    ap.add_argument('--out', default='/tmp/h14/run')
    ap.add_argument('--steps', type=int, default=3300)
    ap.add_argument('--decay-frac', type=float, default=0.5, help='fraction of steps with linearly decaying lr')
    ap.add_argument('--epoch-schedule', type=int, default=0,
                    help="the library's (the reference's) schedule instead: steps / training pairs epochs, the first "
                         "ceil(E/2) at lr, then lr * (1 - (e + 1 - n_epochs) / (n_epochs_decay + 1)) per epoch e, so the "
                         "last epoch runs at lr 0")
    ap.add_argument('--eval-every', type=int, default=500)
    ap.add_argument('--ngf', type=int, default=8)
    ap.add_argument('--ndf', type=int, default=8)
    ap.add_argument('--mults', default='', help='channel multipliers per level, outside in (default 1,2,4,8,...)')
    ap.add_argument('--downs', type=int, default=6)
    ap.add_argument('--norm', default='batch')
    ap.add_argument('--groups', type=int, default=4)
    ap.add_argument('--dropout', type=int, default=1)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--beta1', type=float, default=0.5)
    ap.add_argument('--beta2', type=float, default=0.999)
    ap.add_argument('--lambda-l1', type=float, default=100.0)
    ap.add_argument('--recon', default='l1', help="reconstruction loss: l1 (pix2pix), l2 (mean squared) or l1+l2")
    ap.add_argument('--gan', type=float, default=1.0, help='weight of the GAN term in G loss (0: L1 only, no D step)')
    ap.add_argument('--lsgan', type=int, default=0)
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--flip', type=int, default=1)
    ap.add_argument('--vflip', type=int, default=0, help='also flip pairs upside down at random (the light then comes from below)')
    ap.add_argument('--eval-mode', type=int, default=0, help='translate with running BN stats and no dropout')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--png', type=int, default=0, help='write N test translations as PNGs at the end')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check(args.check) < 1e-6 else 1)

    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    meta, photo, xray, body, bone = load(args.data)
    tr = [i for i, e in enumerate(meta['entries']) if e['split'] == 'train']
    te = [i for i, e in enumerate(meta['entries']) if e['split'] == 'test']
    if args.train_pairs:
        tr = list(rng.permutation(tr)[:args.train_pairs])
    A = torch.from_numpy(photo[tr] * 2 - 1)
    B = torch.from_numpy(xray[tr] * 2 - 1)
    for ex in args.extra:
        _, p2, x2, _, _ = load(ex)
        k = args.extra_pairs or len(p2)
        A = torch.cat([A, torch.from_numpy(p2[:k] * 2 - 1)])
        B = torch.cat([B, torch.from_numpy(x2[:k] * 2 - 1)])
    At = torch.from_numpy(photo[te] * 2 - 1)
    n = A.shape[0]
    G, D = build(args)
    macs = conv_macs(G, D, photo.shape[2], photo.shape[3])
    pg = sum(p.numel() for p in G.parameters())
    pd = sum(p.numel() for p in D.parameters())
    optG = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    optD = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    const = int(args.steps * (1 - args.decay_frac))
    lr_at = lambda s: args.lr * (1.0 if s < const else max(0.0, 1 - (s - const) / (args.steps - const + 1)))
    if args.epoch_schedule:
        # src/gan/lr_policy.ts linearLrFactorForEpoch with the demo's split (cmd_demo.ts: ceil(E/2) + floor(E/2)).
        epochs = args.steps // n
        n_const, n_decay = (epochs + 1) // 2, epochs // 2
        lr_at = lambda s: args.lr * (1 - max(0, s // n + 1 + 1 - n_const) / (n_decay + 1))
    gan_loss = nn.MSELoss() if args.lsgan else nn.BCEWithLogitsLoss()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, 'curve.jsonl'), 'w')
    print(f'{n} train pairs, {len(te)} test; G {pg} params, D {pd}; MACs G {macs[0] / 1e6:.1f}M D {macs[1] / 1e6:.1f}M; {vars(args)}', flush=True)
    log.write(json.dumps({'args': vars(args), 'trainPairs': n, 'G': pg, 'D': pd, 'macsG': macs[0], 'macsD': macs[1]}) + '\n')

    def evaluate(idx_photo, idx_meta, limit=None):
        if args.eval_mode:
            G.eval()
        scores = []
        outs = []
        with torch.no_grad():
            torch.manual_seed(1234)
            for j in range(len(idx_meta) if limit is None else min(limit, len(idx_meta))):
                i = idx_meta[j]
                y = G(torch.from_numpy(photo[i:i + 1] * 2 - 1))
                img = np.round(((y[0, 0].numpy() + 1) / 2).clip(0, 1) * 255) / 255
                outs.append(img)
                scores.append(skeleton(img, bone[i, 0], body[i, 0]))
        G.train()
        return float(np.mean(scores)), outs

    order = []
    t0 = time.time()
    l1s = []
    for step in range(1, args.steps + 1):
        lr = lr_at(step - 1)
        for o in (optG, optD):
            for g in o.param_groups:
                g['lr'] = lr
        idx = []
        for _ in range(args.batch):
            if not order:
                order = list(rng.permutation(n))
            idx.append(order.pop())
        a = A[idx]
        b = B[idx]
        if args.flip:
            a, b = random_flip(rng, a, b, -1)
        if args.vflip:
            # The phantom's light comes from above (lightAzimuth in [-2.6, -1.8] rad: -y, and -x before a
            # horizontal flip), so an upside-down photo is lit from below: a valid photo -> X-ray pair (the
            # X-ray does not depend on the light), but lit as no test photo is.
            a, b = random_flip(rng, a, b, -2)
        fake = G(a)
        if args.gan > 0:
            optD.zero_grad()
            pf = D(torch.cat([a, fake.detach()], 1))
            pr = D(torch.cat([a, b], 1))
            lossD = 0.5 * (gan_loss(pf, torch.zeros_like(pf)) + gan_loss(pr, torch.ones_like(pr)))
            lossD.backward()
            optD.step()
        optG.zero_grad()
        l1 = (fake - b).abs().mean()
        # L1 gives the conditional median: a thin bone whose position is uncertain by a pixel is drawn as
        # soft tissue; L2 gives the conditional mean, a blurred bone.
        recon = {'l1': l1, 'l2': ((fake - b) ** 2).mean(), 'l1+l2': l1 + ((fake - b) ** 2).mean()}[args.recon]
        loss = args.lambda_l1 * recon
        if args.gan > 0:
            pf = D(torch.cat([a, fake], 1))
            loss = loss + args.gan * gan_loss(pf, torch.ones_like(pf))
        loss.backward()
        optG.step()
        l1s.append(l1.item())
        if step % args.eval_every == 0 or step == args.steps:
            el = time.time() - t0
            sk_te, _ = evaluate(te, te)
            sk_tr, _ = evaluate(tr, tr, limit=20)
            rec = {'step': step, 'sec': round(el, 1), 'msPerStep': round(1000 * el / step, 1), 'l1': float(np.mean(l1s[-args.eval_every:])), 'skTest': round(sk_te, 4), 'skTrain': round(sk_tr, 4)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + '\n')
            log.flush()
    if args.png:
        _, outs = evaluate(te, te)
        for j, img in enumerate(outs[:args.png]):
            i = te[j]
            row = np.concatenate([photo[i].transpose(1, 2, 0).mean(-1), img, xray[i, 0], bone[i, 0] / max(1e-6, bone[i, 0].max())], 1)
            write_png(os.path.join(args.out, f'test{j}.png'), np.kron(row.clip(0, 1), np.ones((3, 3))))
    torch.save(G.state_dict(), os.path.join(args.out, 'G.pt'))


if __name__ == '__main__':
    main()
