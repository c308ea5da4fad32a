/**
 * The same pix2pix networks and training step in TensorFlow.js (webgpu backend), as the peer we measure
 * against on the same adapter in the same run. NHWC (TF.js's native layout); padding is explicit so shapes
 * match PyTorch's k4 s2 p1 convs exactly. Instance norm (affine=False), LeakyReLU 0.2, dropout 0.5 on the
 * blocks around the innermost, vanilla GAN loss + 100·L1, Adam(2e-4, 0.5, 0.999): the reference config.
 *
 * TF.js computes gradients by re-running the forward inside `variableGrads`, so its step runs G forward
 * twice (once for the D step on a detached fake, once for the G step); that is how a TF.js user would write it.
 */
import type * as tfType from '@tensorflow/tfjs-core';

type Tf = typeof tfType;
type T4 = tfType.Tensor4D;

export interface TfPix2PixConfig {
  inputChannels: number;
  outputChannels: number;
  numDowns: number;
  ngf: number;
  ndf: number;
  nLayersD: number;
  height: number;
  width: number;
  dropout: boolean;
}

export class TfPix2Pix {
  private readonly gVars: tfType.Variable[] = [];
  private readonly dVars: tfType.Variable[] = [];
  private readonly g: { down: tfType.Variable[]; downB: (tfType.Variable | null)[]; up: tfType.Variable[]; upB: (tfType.Variable | null)[] };
  private readonly d: { w: tfType.Variable[]; b: (tfType.Variable | null)[]; norm: boolean[]; stride: number[] };
  private readonly optG: tfType.Optimizer;
  private readonly optD: tfType.Optimizer;

  constructor(
    private readonly tf: Tf,
    readonly cfg: TfPix2PixConfig,
  ) {
    const { ngf, numDowns, inputChannels: inC, outputChannels: outC } = cfg;
    // Encoder channels: ngf, 2ngf, 4ngf, 8ngf, 8ngf ... (numDowns levels)
    const enc = Array.from({ length: numDowns }, (_, i) => ngf * Math.min(2 ** i, 8));
    const w = (shape: number[]) => {
      const v = tf.variable(tf.randomNormal(shape, 0, 0.02));
      return v;
    };
    const zeros = (n: number) => tf.variable(tf.zeros([n]));
    const down: tfType.Variable[] = [];
    const downB: (tfType.Variable | null)[] = [];
    for (let i = 0; i < numDowns; i++) {
      const cin = i === 0 ? inC : enc[i - 1];
      down.push(w([4, 4, cin, enc[i]])); // HWIO
      downB.push(zeros(enc[i])); // instance norm → bias on every conv
    }
    const up: tfType.Variable[] = [];
    const upB: (tfType.Variable | null)[] = [];
    for (let i = numDowns - 1; i >= 0; i--) {
      const cin = i === numDowns - 1 ? enc[i] : enc[i] * 2;
      const cout = i === 0 ? outC : enc[i - 1];
      up.push(w([4, 4, cout, cin])); // conv2dTranspose filter: [h, w, outDepth, inDepth]
      upB.push(zeros(cout));
    }
    this.g = { down, downB, up, upB };
    this.gVars.push(...down, ...downB.filter(Boolean) as tfType.Variable[], ...up, ...upB.filter(Boolean) as tfType.Variable[]);

    const dw: tfType.Variable[] = [];
    const db: (tfType.Variable | null)[] = [];
    const norm: boolean[] = [];
    const stride: number[] = [];
    let cin = inC + outC;
    let mult = 1;
    for (let n = 0; n <= cfg.nLayersD + 1; n++) {
      let cout: number;
      if (n === 0) cout = cfg.ndf;
      else if (n <= cfg.nLayersD) {
        mult = Math.min(2 ** n, 8);
        cout = cfg.ndf * mult;
      } else cout = 1;
      dw.push(w([4, 4, cin, cout]));
      db.push(zeros(cout));
      norm.push(n > 0 && n <= cfg.nLayersD);
      stride.push(n < cfg.nLayersD ? 2 : 1);
      cin = cout;
    }
    this.d = { w: dw, b: db, norm, stride };
    this.dVars.push(...dw, ...db.filter(Boolean) as tfType.Variable[]);
    this.optG = tf.train.adam(2e-4, 0.5, 0.999);
    this.optD = tf.train.adam(2e-4, 0.5, 0.999);
  }

  private instanceNorm(x: T4): T4 {
    const { mean, variance } = this.tf.moments(x, [1, 2], true);
    const tf = this.tf;
    return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))) as T4;
  }

  private conv(x: T4, w: tfType.Variable, b: tfType.Variable | null, stride: number): T4 {
    const tf = this.tf;
    const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    let y = tf.conv2d(padded, w as unknown as tfType.Tensor4D, stride, 'valid');
    if (b) y = tf.add(y, b) as T4;
    return y;
  }

  private convT(x: T4, w: tfType.Variable, b: tfType.Variable | null): T4 {
    const [n, h, wd] = x.shape;
    const cout = w.shape[2] as number;
    let y = this.tf.conv2dTranspose(x, w as unknown as tfType.Tensor4D, [n, h * 2, wd * 2, cout], 2, 'same');
    if (b) y = this.tf.add(y, b) as T4;
    return y;
  }

  /** U-Net forward, same block order as the reference (skip carries LeakyReLU(x) as PyTorch's in-place op does). */
  generator(a: T4, training = true): T4 {
    const tf = this.tf;
    const { down, downB, up, upB } = this.g;
    const L = this.cfg.numDowns;
    const skips: T4[] = [];
    let h = this.conv(a, down[0], downB[0], 2);
    for (let i = 1; i < L; i++) {
      const act = tf.leakyRelu(h, 0.2) as T4;
      skips.push(act);
      h = this.conv(act, down[i], downB[i], 2);
      if (i < L - 1) h = this.instanceNorm(h);
    }
    for (let j = 0; j < L; j++) {
      const i = L - 1 - j; // level
      h = this.convT(tf.relu(h) as T4, up[j], upB[j]);
      if (i === 0) return tf.tanh(h) as T4;
      h = this.instanceNorm(h);
      const dropoutHere = this.cfg.dropout && training && i >= 1 && i < L - 1 && i >= L - 1 - (L - 5);
      if (dropoutHere) h = tf.dropout(h, 0.5) as T4;
      h = tf.concat([skips[i - 1], h], 3) as T4;
    }
    return h;
  }

  discriminator(x: T4): T4 {
    const tf = this.tf;
    let h = x;
    const n = this.d.w.length;
    for (let i = 0; i < n; i++) {
      h = this.conv(h, this.d.w[i], this.d.b[i], this.d.stride[i]);
      if (this.d.norm[i]) h = this.instanceNorm(h);
      if (i < n - 1) h = tf.leakyRelu(h, 0.2) as T4;
    }
    return h;
  }

  private bce(logits: T4, target: number): tfType.Scalar {
    const tf = this.tf;
    return tf.losses.sigmoidCrossEntropy(tf.fill(logits.shape, target), logits) as tfType.Scalar;
  }

  /** One reference-order step: G fwd, D step on (A, G(A) detached) and (A, B), G step through the updated D. */
  trainStep(a: T4, b: T4): void {
    const tf = this.tf;
    tf.tidy(() => {
      const fake = tf.tidy(() => this.generator(a));
      this.optD.minimize(() => {
        const predFake = this.discriminator(tf.concat([a, fake], 3) as T4);
        const predReal = this.discriminator(tf.concat([a, b], 3) as T4);
        return tf.mul(tf.add(this.bce(predFake, 0), this.bce(predReal, 1)), 0.5) as tfType.Scalar;
      }, false, this.dVars);
      this.optG.minimize(() => {
        const f = this.generator(a);
        const pred = this.discriminator(tf.concat([a, f], 3) as T4);
        return tf.add(this.bce(pred, 1), tf.mul(tf.losses.absoluteDifference(b, f), 100)) as tfType.Scalar;
      }, false, this.gVars);
    });
  }

  /** Wait for all queued work: reading a value updated by the last optimizer step drains the queue. */
  async sync(): Promise<void> {
    const s = this.tf.sum(this.gVars[this.gVars.length - 1]);
    await s.data();
    s.dispose();
  }

  dispose(): void {
    for (const v of [...this.gVars, ...this.dVars]) v.dispose();
    this.optG.dispose();
    this.optD.dispose();
  }
}
