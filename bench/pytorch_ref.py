#!/usr/bin/env python3
"""PyTorch reference timing for pix2pix-webgpu's benchmark (issue 15 item 4).

Times the same networks and step as bench/cases_model.ts: the reference's U-Net generator (unet_256 layout,
numDowns levels) and 70x70 PatchGAN (n_layers 3), instance norm (affine=False, conv bias on, as the reference's
get_norm_layer('instance')), dropout on, batch 1, fp32; G forward in eval mode and the full pix2pix training step
(D on fake and real, Adam on D; D on fake, GAN + 100 L1, Adam on G), at `small` (64x128, ngf 8), 256x256
(unet_256, ngf 64) and 512x1024, plus peak memory. Prints JSON.

Run with Debian's python3-torch here (CPU) or on a GPU machine:
  python3 bench/pytorch_ref.py --config small
  python3 bench/pytorch_ref.py --config all --device cuda
"""
import argparse
import json
import platform
import resource
import statistics
import time

import torch
import torch.nn as nn

CONFIGS = {
    'small': dict(height=64, width=128, ngf=8, ndf=8, num_downs=6),
    '256': dict(height=256, width=256, ngf=64, ndf=64, num_downs=8),
    '512x1024': dict(height=512, width=1024, ngf=64, ndf=64, num_downs=8),
}


def norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class UnetBlock(nn.Module):
    """The reference's UnetSkipConnectionBlock (models/networks.py) with instance norm (so conv bias on)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=True)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=True)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=True)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet(input_nc, output_nc, num_downs, ngf, use_dropout=True):
    block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = UnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
    block = UnetBlock(ngf * 4, ngf * 8, submodule=block)
    block = UnetBlock(ngf * 2, ngf * 4, submodule=block)
    block = UnetBlock(ngf, ngf * 2, submodule=block)
    return UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)


def patchgan(input_nc, ndf, n_layers=3):
    seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=True), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True), norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), times


def bench(name, device, warmup, repeats):
    c = CONFIGS[name]
    torch.manual_seed(1)
    G = unet(3, 3, c['num_downs'], c['ngf']).to(device)
    D = patchgan(6, c['ndf']).to(device)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    l1 = nn.L1Loss()
    a = torch.randn(1, 3, c['height'], c['width'], device=device) * 0.5
    b = torch.randn(1, 3, c['height'], c['width'], device=device) * 0.5
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()

    def g_forward():
        G.eval()
        with torch.no_grad():
            G(a)

    def step():
        G.train()
        fake = G(a)
        # D: fake (detached) and real; loss_D = (fake + real) / 2.
        optD.zero_grad(set_to_none=True)
        pf = D(torch.cat([a, fake.detach()], 1))
        pr = D(torch.cat([a, b], 1))
        loss_d = 0.5 * (bce(pf, torch.zeros_like(pf)) + bce(pr, torch.ones_like(pr)))
        loss_d.backward()
        optD.step()
        # G: D frozen on the same fake; GAN towards real + 100 L1.
        for p in D.parameters():
            p.requires_grad_(False)
        optG.zero_grad(set_to_none=True)
        pg = D(torch.cat([a, fake], 1))
        loss_g = bce(pg, torch.ones_like(pg)) + 100.0 * l1(fake, b)
        loss_g.backward()
        optG.step()
        for p in D.parameters():
            p.requires_grad_(True)

    g_ms, g_times = timed(g_forward, device, warmup, repeats)
    s_ms, s_times = timed(step, device, warmup, repeats)
    out = {'config': name, **c, 'gForwardMs': g_ms, 'trainStepMs': s_ms, 'gForwardTimes': g_times, 'trainStepTimes': s_times}
    if device.type == 'cuda':
        out['peakMiB'] = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        # Linux reports ru_maxrss in KiB: the whole process's peak resident set (Python and torch included).
        out['peakRssMiB'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config', default='small', choices=[*CONFIGS, 'all'])
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=10)
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = list(CONFIGS) if args.config == 'all' else [args.config]
    results = [bench(n, device, args.warmup, args.repeats) for n in names]
    meta = {
        'torch': torch.__version__,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine(),
        'threads': torch.get_num_threads(),
        'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
    }
    print(json.dumps({'meta': meta, 'results': results}, indent=1))


if __name__ == '__main__':
    main()
