/**
 * Synthetic mouse phantoms: an aligned (photo, planar X-ray) pair of an anaesthetised mouse lying prone
 * on a white or black bed, as in the seed paper's dataset (50x100 mm field of view, 5 poses per animal).
 *
 * Everything is analytic, in millimetres, in the animal's own frame: a pixel is rotated/translated into
 * body coordinates (u along the spine, nose towards +u; v across), then "unbent" (w = v - bend(u)), and
 * every shape (torso and head ellipsoids, neck, limb and tail capsules, ears, eyes) and every bone
 * (skull, vertebrae, ribs, pelvis, scapulae, limb and tail bones) is a distance test in (u, w). So the
 * skeleton follows exactly the same pose as the body outline, but it is drawn only in the X-ray: a
 * network has to infer it from the silhouette and pose.
 *
 * Photo: bed colour with a low-frequency texture, fur colour shaded by the body's height field (Lambert
 * on the normal of the thickness map), a soft shadow, an illumination gradient and gaussian sensor noise.
 * X-ray: bright = dense (as planar X-ray images are displayed): 1 - exp(-sum(mu * thickness)) over
 * soft tissue (elliptical cross-sections), air in the lungs and bone.
 *
 * Browser-safe and deterministic: all randomness comes from {@link Rng} seeded by the animal and pose.
 */
import { Rng, mixDataSeed } from '../runtime/random.js';
import { ShapeError } from '../runtime/errors.js';
import { createImage, type ImageF32 } from './image.js';

export type Colour = 'white' | 'black';

/** Per-animal anatomy and appearance (millimetres). Poses are derived from `seed` and the pose index. */
export interface AnimalParams {
  /** Animal id, e.g. "m007". */
  id: string;
  /** Seed for everything pose- and noise-related. */
  seed: number;
  fur: Colour;
  bed: Colour;
  /** Torso half-length and half-width (prone, seen from above), and half-depth (for the X-ray). */
  torsoA: number;
  torsoB: number;
  torsoDepth: number;
  /** Head half-length and half-width. */
  headA: number;
  headB: number;
  /** Visible tail length and its base radius. */
  tailLength: number;
  tailRadius: number;
  /** Upper and lower segment lengths of the fore and hind limbs. */
  foreLimb: [number, number];
  hindLimb: [number, number];
  /** Small per-animal shifts of the fur and bed colours (added to RGB). */
  furTint: [number, number, number];
  bedTint: [number, number, number];
}

/** Pose parameters; {@link poseParams} draws them from (animal.seed, pose). */
export interface PoseParams {
  /** Rotation of the body axis, radians (±20°). */
  rotation: number;
  /** Lateral offset of the spine at the torso ends (mm); the axis is a parabola w = k u². */
  bend: number;
  /** Translation of the body centre from the image centre (mm). */
  shift: [number, number];
  /** Limb angles from the +u axis (radians) and joint bends, for [fore-left, fore-right, hind-left, hind-right]. */
  limbAngle: [number, number, number, number];
  limbBend: [number, number, number, number];
  /** Tail base angle deviation (radians) and curvature (radians per mm). */
  tailAngle: number;
  tailCurl: number;
  /** Light direction azimuth (radians) and illumination gradient across the image. */
  lightAzimuth: number;
  gradient: [number, number];
}

export interface PhantomPair {
  /** RGB photograph, [0, 1]. */
  photo: ImageF32;
  /** Gray planar X-ray, [0, 1], bright = dense. */
  xray: ImageF32;
  /** 1 where at least half of the pixel is covered by the animal (withMasks only). */
  bodyMask?: ImageF32;
  /** 1 where at least half of the pixel is covered by bone (withMasks only). */
  boneMask?: ImageF32;
  /**
   * The bone layer: mean projected bone thickness over the pixel, in mm (withMasks only). The X-ray's bone
   * term is this times the bone's attenuation; unlike `boneMask` it tells a vertebra (2.4 mm) from a rib's
   * edge (0.3 mm) and the skull's thin centre from its rim.
   */
  boneLayer?: ImageF32;
}

/** The seed paper's field of view: 100 x 50 mm imaged at 1024 x 512. */
export const FIELD_OF_VIEW_MM = { width: 100, height: 50 } as const;

/**
 * Draw an animal. `fur` and `bed` are random unless given (the dataset synthesiser balances them).
 */
export function makeAnimal(rng: Rng, id: string, overrides: { fur?: Colour; bed?: Colour } = {}): AnimalParams {
  const fur: Colour = overrides.fur ?? (rng.bool() ? 'white' : 'black');
  const bed: Colour = overrides.bed ?? (rng.bool() ? 'white' : 'black');
  const torsoB = rng.uniform(9.5, 11.5);
  const jitter = (s: number): [number, number, number] => {
    const g = rng.normal(0, s);
    return [g + rng.normal(0, s / 3), g + rng.normal(0, s / 3), g + rng.normal(0, s / 3)];
  };
  return {
    id,
    seed: Math.floor(rng.next() * 4294967296) >>> 0,
    fur,
    bed,
    torsoA: rng.uniform(17.5, 21),
    torsoB,
    torsoDepth: torsoB * rng.uniform(0.68, 0.8),
    headA: rng.uniform(8.5, 10.5),
    headB: rng.uniform(6, 7.5),
    tailLength: rng.uniform(35, 50),
    tailRadius: rng.uniform(1.4, 1.8),
    foreLimb: [rng.uniform(3, 4.5), rng.uniform(3, 4)],
    hindLimb: [rng.uniform(4.5, 6), rng.uniform(4.5, 6)],
    furTint: jitter(0.015),
    bedTint: jitter(0.015),
  };
}

/** The pose parameters of `animal` in pose `pose` (deterministic). Pose 0 is the most relaxed. */
export function poseParams(animal: AnimalParams, pose: number): PoseParams {
  const rng = new Rng(mixDataSeed(animal.seed, pose + 1));
  const deg = Math.PI / 180;
  const side = (lo: number, hi: number) => rng.uniform(lo, hi) * deg;
  return {
    rotation: rng.uniform(-20, 20) * deg,
    bend: rng.uniform(-6, 6),
    shift: [rng.uniform(-3, 3), rng.uniform(-2, 2)],
    limbAngle: [side(35, 80), -side(35, 80), side(110, 155), -side(110, 155)],
    limbBend: [side(-35, 35), side(-35, 35), side(-35, 35), side(-35, 35)],
    tailAngle: side(-25, 25),
    tailCurl: rng.uniform(-0.05, 0.05),
    lightAzimuth: rng.uniform(-2.6, -1.8),
    gradient: [rng.uniform(-0.06, 0.06), rng.uniform(-0.05, 0.05)],
  };
}

// ---------------------------------------------------------------------------------------------------
// Geometry in body coordinates.

interface Capsule {
  au: number;
  aw: number;
  bu: number;
  bw: number;
  /** Radius at a and at b (tapered). */
  ra: number;
  rb: number;
  /** Bounding box (filled by {@link boxed}), for a quick reject before the distance. */
  box?: [number, number, number, number];
}

function boxed(c: Capsule): Capsule {
  const r = Math.max(c.ra, c.rb);
  c.box = [Math.min(c.au, c.bu) - r, Math.max(c.au, c.bu) + r, Math.min(c.aw, c.bw) - r, Math.max(c.aw, c.bw) + r];
  return c;
}

interface Rig {
  a: number;
  b: number;
  depth: number;
  headC: number;
  headA: number;
  headB: number;
  neck: Capsule;
  ears: [number, number, number][]; // (u, w, r)
  eyes: [number, number, number][];
  limbs: Capsule[]; // 8: upper and lower of each limb
  paws: Capsule[]; // 4
  limbBones: Capsule[]; // 12
  tail: Capsule[];
  tailArc: number[]; // arc length at each tail segment start
  tailSeg: number;
  pelvis: Capsule[];
  ischia: [number, number, number][]; // ring centre and radius
  scapulae: { u: number; w: number; cos: number; sin: number; ra: number; rb: number }[];
  incisor: Capsule;
  spine: { u0: number; u1: number; spacing: number };
  ribs: { top: number; spacing: number; count: number; sweep: number };
  lungs: [number, number, number, number][]; // (u, w, semiU, semiW)
  /** Bounding box in (u, w). */
  box: [number, number, number, number];
}

function buildRig(an: AnimalParams, pose: PoseParams): Rig {
  const a = an.torsoA;
  const b = an.torsoB;
  const headC = a + 0.55 * an.headA;
  const limbs: Capsule[] = [];
  const paws: Capsule[] = [];
  const limbBones: Capsule[] = [];
  const attach: [number, number][] = [
    [0.55 * a, 0.55 * b],
    [0.55 * a, -0.55 * b],
    [-0.6 * a, 0.55 * b],
    [-0.6 * a, -0.55 * b],
  ];
  for (let k = 0; k < 4; k++) {
    const fore = k < 2;
    const [l0, l1] = fore ? an.foreLimb : an.hindLimb;
    const [r0, r1] = fore ? [2.4, 1.6] : [3.2, 1.9];
    const ang0 = pose.limbAngle[k];
    const ang1 = ang0 + pose.limbBend[k];
    const [u0, w0] = attach[k];
    // The upper segment starts inside the torso, so it reads as a limb growing out of the body.
    const u1 = u0 + (l0 + 0.45 * b) * Math.cos(ang0);
    const w1 = w0 + (l0 + 0.45 * b) * Math.sin(ang0);
    const u2 = u1 + l1 * Math.cos(ang1);
    const w2 = w1 + l1 * Math.sin(ang1);
    const pawLen = fore ? 2.2 : 4.5;
    const u3 = u2 + pawLen * Math.cos(ang1);
    const w3 = w2 + pawLen * Math.sin(ang1);
    limbs.push({ au: u0, aw: w0, bu: u1, bw: w1, ra: r0, rb: r0 * 0.85 });
    limbs.push({ au: u1, aw: w1, bu: u2, bw: w2, ra: r1 * 1.1, rb: r1 });
    paws.push({ au: u2, aw: w2, bu: u3, bw: w3, ra: fore ? 1.5 : 1.6, rb: fore ? 1.3 : 1.2 });
    const br = fore ? 0.55 : 0.7;
    limbBones.push({ au: u0, aw: w0, bu: u1, bw: w1, ra: br, rb: br });
    limbBones.push({ au: u1, aw: w1, bu: u2, bw: w2, ra: br * 0.75, rb: br * 0.7 });
    limbBones.push({ au: u2, aw: w2, bu: u3 - 0.6 * Math.cos(ang1), bw: w3 - 0.6 * Math.sin(ang1), ra: 0.35, rb: 0.3 });
  }
  // Tail: a tapered polyline with constant curvature, from inside the rump backwards.
  const tail: Capsule[] = [];
  const tailArc: number[] = [];
  const nSeg = 16;
  const seg = an.tailLength / nSeg;
  let tu = -0.9 * a;
  let tw = 0;
  let heading = Math.PI + pose.tailAngle;
  let arc = 0;
  for (let i = 0; i < nSeg; i++) {
    const nu = tu + seg * Math.cos(heading);
    const nw = tw + seg * Math.sin(heading);
    const ra = an.tailRadius * (1 - 0.6 * (i / nSeg));
    const rb = an.tailRadius * (1 - 0.6 * ((i + 1) / nSeg));
    tail.push({ au: tu, aw: tw, bu: nu, bw: nw, ra, rb });
    tailArc.push(arc);
    arc += seg;
    tu = nu;
    tw = nw;
    heading += pose.tailCurl * seg;
  }
  const skullBack = headC - 0.85 * an.headA;
  const ears: [number, number, number][] = [
    [headC - 0.4 * an.headA, 0.92 * an.headB, 3.3],
    [headC - 0.4 * an.headA, -0.92 * an.headB, 3.3],
  ];
  const eyes: [number, number, number][] = [
    [headC + 0.22 * an.headA, 0.55 * an.headB, 1.05],
    [headC + 0.22 * an.headA, -0.55 * an.headB, 1.05],
  ];
  const pelvis: Capsule[] = [
    { au: -0.3 * a, aw: 0.14 * b, bu: -0.62 * a, bw: 0.36 * b, ra: 1.0, rb: 0.9 },
    { au: -0.3 * a, aw: -0.14 * b, bu: -0.62 * a, bw: -0.36 * b, ra: 1.0, rb: 0.9 },
  ];
  const ischia: [number, number, number][] = [
    [-0.76 * a, 0.28 * b, 1.6],
    [-0.76 * a, -0.28 * b, 1.6],
  ];
  const scap = (s: number) => ({ u: 0.42 * a, w: s * 0.42 * b, cos: Math.cos(s * 0.5), sin: Math.sin(s * 0.5), ra: 3.6, rb: 1.7 });
  // Bounding box over every shape, plus a margin.
  let umin = -a;
  let umax = headC + an.headA;
  let wmin = -Math.max(b, an.headB + 3.3);
  let wmax = -wmin;
  for (const c of [...limbs, ...paws, ...tail]) {
    const r = Math.max(c.ra, c.rb);
    umin = Math.min(umin, c.au - r, c.bu - r);
    umax = Math.max(umax, c.au + r, c.bu + r);
    wmin = Math.min(wmin, c.aw - r, c.bw - r);
    wmax = Math.max(wmax, c.aw + r, c.bw + r);
  }
  const neck = boxed({ au: 0.6 * a, aw: 0, bu: headC - 0.1 * an.headA, bw: 0, ra: 0.75 * an.headB, rb: 0.75 * an.headB });
  const incisor = boxed({ au: headC + 0.62 * an.headA, aw: 0, bu: headC + 0.86 * an.headA, bw: 0, ra: 0.55, rb: 0.45 });
  [...limbs, ...paws, ...limbBones, ...tail, ...pelvis].forEach(boxed);
  return {
    a,
    b,
    depth: an.torsoDepth,
    headC,
    headA: an.headA,
    headB: an.headB,
    neck,
    ears,
    eyes,
    limbs,
    paws,
    limbBones,
    tail,
    tailArc,
    tailSeg: seg,
    pelvis,
    ischia,
    scapulae: [scap(1), scap(-1)],
    incisor,
    spine: { u0: -0.93 * a, u1: skullBack + 0.4, spacing: (skullBack + 0.4 + 0.93 * a) / 30 },
    ribs: { top: 0.55 * a, spacing: (0.75 * a) / 12, count: 13, sweep: 0.22 * a },
    lungs: [
      [0.2 * a, 0.4 * b, 0.33 * a, 0.3 * b],
      [0.2 * a, -0.4 * b, 0.33 * a, 0.3 * b],
    ],
    box: [umin - 1, umax + 1, wmin - 1, wmax + 1],
  };
}

/** Distance from p to the segment of c, and the parameter t in [0, 1] of the nearest point. */
function capsuleHit(c: Capsule, u: number, w: number, out: { d: number; t: number }): number {
  const b = c.box!;
  if (u < b[0] || u > b[1] || w < b[2] || w > b[3]) {
    out.d = Infinity;
    out.t = 0;
    return 0;
  }
  const du = c.bu - c.au;
  const dw = c.bw - c.aw;
  const len2 = du * du + dw * dw;
  let t = len2 > 0 ? ((u - c.au) * du + (w - c.aw) * dw) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const eu = u - c.au - t * du;
  const ew = w - c.aw - t * dw;
  out.d = Math.sqrt(eu * eu + ew * ew);
  out.t = t;
  return c.ra + (c.rb - c.ra) * t;
}

/** Chord length of a cylinder of radius r at distance d from its axis (its projected thickness). */
function chord(r: number, d: number): number {
  return d < r ? 2 * Math.sqrt(r * r - d * d) : 0;
}

const MAT_NONE = 0;
const MAT_FUR = 1;
const MAT_EAR = 2;
const MAT_EYE = 3;
const MAT_PAW = 4;
const MAT_TAIL = 5;
const N_MAT = 6;

/** Result of one sample: soft-tissue thickness, lung air, bone thickness (mm) and the visible material. */
interface Sample {
  soft: number;
  air: number;
  bone: number;
  mat: number;
}

function sampleBody(r: Rig, u: number, w: number, s: Sample, hit: { d: number; t: number }): void {
  s.soft = 0;
  s.air = 0;
  s.bone = 0;
  s.mat = MAT_NONE;
  if (u < r.box[0] || u > r.box[1] || w < r.box[2] || w > r.box[3]) return;
  let soft = 0;
  let mat = MAT_NONE;
  // Torso: ellipsoid.
  const tu = u / r.a;
  const tw = w / r.b;
  const tr2 = tu * tu + tw * tw;
  if (tr2 < 1) {
    soft = 2 * r.depth * Math.sqrt(1 - tr2);
    mat = MAT_FUR;
  }
  // Head: egg-shaped ellipsoid, narrowing towards the nose.
  const hu = (u - r.headC) / r.headA;
  const hb = r.headB * (1 - 0.32 * Math.min(1, Math.max(0, hu)));
  const hw = w / hb;
  const hr2 = hu * hu + hw * hw;
  if (hr2 < 1) {
    soft = Math.max(soft, 2 * 0.72 * hb * Math.sqrt(1 - hr2));
    mat = MAT_FUR;
  }
  const nr = capsuleHit(r.neck, u, w, hit);
  if (hit.d < nr) {
    soft = Math.max(soft, 0.85 * chord(nr, hit.d));
    mat = MAT_FUR;
  }
  const inTrunk = mat === MAT_FUR;
  // Limbs (fur) and paws (skin), only visible outside the trunk.
  for (let i = 0; i < r.limbs.length; i++) {
    const rr = capsuleHit(r.limbs[i], u, w, hit);
    if (hit.d < rr) {
      soft = Math.max(soft, chord(rr, hit.d));
      if (!inTrunk) mat = MAT_FUR;
    }
  }
  for (let i = 0; i < r.paws.length; i++) {
    const rr = capsuleHit(r.paws[i], u, w, hit);
    if (hit.d < rr) {
      soft = Math.max(soft, 0.7 * chord(rr, hit.d));
      if (!inTrunk && mat === MAT_NONE) mat = MAT_PAW;
    }
  }
  // Tail, with its vertebrae.
  let bone = 0;
  for (let i = 0; i < r.tail.length; i++) {
    const c = r.tail[i];
    const rr = capsuleHit(c, u, w, hit);
    if (hit.d < rr) {
      soft = Math.max(soft, chord(rr, hit.d));
      if (mat === MAT_NONE) mat = MAT_TAIL;
      const segLen = r.tailSeg;
      const arc = r.tailArc[i] + hit.t * segLen;
      const phase = (arc / 2.0) % 1;
      if (arc > 1.5 && phase > 0.12 && phase < 0.88) bone = Math.max(bone, 0.9 * chord(0.42 * rr, hit.d));
    }
  }
  // Ears lie on top of the head; eyes are drawn over everything.
  for (let i = 0; i < r.ears.length; i++) {
    const e = r.ears[i];
    const du = (u - e[0]) / (e[2] * 0.85);
    const dw = (w - e[1]) / e[2];
    if (du * du + dw * dw < 1) {
      soft = Math.max(soft, 0.6);
      mat = MAT_EAR;
    }
  }
  for (let i = 0; i < r.eyes.length; i++) {
    const e = r.eyes[i];
    const du = u - e[0];
    const dw = w - e[1];
    if (du * du + dw * dw < e[2] * e[2]) mat = MAT_EYE;
  }
  if (mat === MAT_NONE) {
    s.soft = 0;
    return;
  }
  // ---- Skeleton (X-ray only). ----
  // Skull: a shell, so its projection is brightest at the rim.
  const su = (u - r.headC - 0.05 * r.headA) / (0.85 * r.headA);
  const sb = 0.7 * r.headB * (1 - 0.32 * Math.min(1, Math.max(0, su)));
  const sw = w / sb;
  const sr2 = su * su + sw * sw;
  if (sr2 < 1) bone = Math.max(bone, Math.min(2, 0.45 / Math.sqrt(Math.max(1 - sr2, 0.05))));
  const ir = capsuleHit(r.incisor, u, w, hit);
  if (hit.d < ir) bone = Math.max(bone, 2.2 * chord(ir, hit.d));
  // Spine: ~30 vertebrae along w = 0, wider in the lumbar region.
  const sp = r.spine;
  if (u > sp.u0 - sp.spacing && u < sp.u1 + sp.spacing) {
    const k = Math.round((u - sp.u0) / sp.spacing);
    if (k >= 0 && k * sp.spacing + sp.u0 <= sp.u1) {
      const du = u - (sp.u0 + k * sp.spacing);
      const lumbar = u < -0.1 * r.a && u > -0.7 * r.a;
      const half = lumbar ? 1.35 : 0.95;
      if (Math.abs(du) < 0.38 * sp.spacing && Math.abs(w) < half) bone = Math.max(bone, 2.4 * Math.sqrt(1 - (w / half) ** 2));
    }
  }
  // Ribs: 13 pairs sweeping backwards from the spine, each ending inside the local torso outline.
  const rb = r.ribs;
  const ext = 0.8 * r.b;
  const aw = Math.abs(w);
  if (aw > 0.6 && aw < ext) {
    const q = aw / ext;
    const f = rb.sweep * q * Math.sqrt(q);
    const k = Math.round((rb.top - (u + f)) / rb.spacing);
    if (k >= 0 && k < rb.count) {
      const ui = rb.top - k * rb.spacing;
      const local = 0.82 * r.b * Math.sqrt(Math.max(0, 1 - (ui / r.a) ** 2));
      const du = u + f - ui;
      if (aw < local && Math.abs(du) < 0.42) bone = Math.max(bone, 0.9 * chord(0.42, du));
    }
  }
  for (let i = 0; i < r.pelvis.length; i++) {
    const c = r.pelvis[i];
    const pr = capsuleHit(c, u, w, hit);
    if (hit.d < pr) bone = Math.max(bone, 1.4 * chord(pr, hit.d));
  }
  for (let i = 0; i < r.ischia.length; i++) {
    const e = r.ischia[i];
    const du = u - e[0];
    const dw = w - e[1];
    const d = Math.abs(Math.sqrt(du * du + dw * dw) - e[2]);
    if (d < 0.5) bone = Math.max(bone, 1.2 * chord(0.5, d));
  }
  for (let i = 0; i < r.scapulae.length; i++) {
    const sc = r.scapulae[i];
    const du = u - sc.u;
    const dw = w - sc.w;
    const pu = (du * sc.cos + dw * sc.sin) / sc.ra;
    const pw = (-du * sc.sin + dw * sc.cos) / sc.rb;
    if (pu * pu + pw * pw < 1) bone = Math.max(bone, 0.6);
  }
  for (let i = 0; i < r.limbBones.length; i++) {
    const c = r.limbBones[i];
    const br = capsuleHit(c, u, w, hit);
    if (hit.d < br) bone = Math.max(bone, 1.2 * chord(br, hit.d));
  }
  // Lungs: air inside the thorax lowers the attenuation there (so the ribs stand out).
  let air = 0;
  for (let i = 0; i < r.lungs.length; i++) {
    const e = r.lungs[i];
    const du = (u - e[0]) / e[2];
    const dw = (w - e[1]) / e[3];
    const q = du * du + dw * dw;
    if (q < 1) air = Math.max(air, 0.45 * r.depth * 2 * Math.sqrt(1 - q));
  }
  s.soft = soft;
  s.air = Math.min(air, 0.7 * soft);
  s.bone = bone;
  s.mat = mat;
}

// ---------------------------------------------------------------------------------------------------
// Rendering.

/** Colours for the visible materials, per fur colour. */
function palette(an: AnimalParams): number[][] {
  const t = an.furTint;
  const add = (c: number[]) => c.map((v, i) => v + t[i]);
  if (an.fur === 'white') {
    return [[0, 0, 0], add([0.95, 0.93, 0.89]), [0.93, 0.74, 0.72], [0.72, 0.18, 0.24], [0.94, 0.76, 0.74], [0.9, 0.76, 0.74]];
  }
  return [[0, 0, 0], add([0.19, 0.165, 0.155]), [0.3, 0.22, 0.22], [0.03, 0.03, 0.03], [0.55, 0.44, 0.44], [0.34, 0.28, 0.28]];
}

function bedColour(an: AnimalParams): number[] {
  const base = an.bed === 'white' ? [0.85, 0.87, 0.89] : [0.1, 0.105, 0.115];
  return base.map((v, i) => v + an.bedTint[i]);
}

/** Bilinear value noise on a grid with `cell` pixels per cell (seeded). */
function valueNoise(rng: Rng, width: number, height: number, cell: number): Float32Array {
  const gw = Math.ceil(width / cell) + 2;
  const gh = Math.ceil(height / cell) + 2;
  const g = new Float32Array(gw * gh);
  for (let i = 0; i < g.length; i++) g[i] = rng.next() * 2 - 1;
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const fy = y / cell;
    const iy = Math.floor(fy);
    const ty = fy - iy;
    for (let x = 0; x < width; x++) {
      const fx = x / cell;
      const ix = Math.floor(fx);
      const tx = fx - ix;
      const a = g[iy * gw + ix] * (1 - tx) + g[iy * gw + ix + 1] * tx;
      const b = g[(iy + 1) * gw + ix] * (1 - tx) + g[(iy + 1) * gw + ix + 1] * tx;
      out[y * width + x] = a * (1 - ty) + b * ty;
    }
  }
  return out;
}

/** Separable box blur (radius in pixels), clamped borders; three passes approximate a gaussian. */
function boxBlur(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  if (radius < 1) return src.slice();
  const tmp = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  const n = 2 * radius + 1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let acc = 0;
    for (let k = -radius; k <= radius; k++) acc += src[row + Math.min(width - 1, Math.max(0, k))];
    for (let x = 0; x < width; x++) {
      tmp[row + x] = acc / n;
      acc += src[row + Math.min(width - 1, x + radius + 1)] - src[row + Math.max(0, x - radius)];
    }
  }
  for (let x = 0; x < width; x++) {
    let acc = 0;
    for (let k = -radius; k <= radius; k++) acc += tmp[Math.min(height - 1, Math.max(0, k)) * width + x];
    for (let y = 0; y < height; y++) {
      out[y * width + x] = acc / n;
      acc += tmp[Math.min(height - 1, y + radius + 1) * width + x] - tmp[Math.max(0, y - radius) * width + x];
    }
  }
  return out;
}

/**
 * Render one aligned (photo, X-ray) pair of `animal` in pose `pose` at `size`. The 100 x 50 mm field of
 * view is fitted into the image (uniform scale). Small images are supersampled (2x2 at 64x128) so thin bones
 * (0.8 mm ribs) still show. Deterministic in (animal, pose, size). `noise` scales the gaussian sensor
 * noise of both images (default 1: std 0.012 in the photo, 0.008 in the X-ray); `withMasks` adds the
 * body and bone masks used to check the photo/X-ray correspondence.
 */
export function renderPhantomPair(
  animal: AnimalParams,
  pose: number,
  size: { width: number; height: number },
  opts: { withMasks?: boolean; noise?: number } = {},
): PhantomPair {
  const noise = opts.noise ?? 1;
  const { width, height } = size;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 8 && height >= 8)) {
    throw new ShapeError('renderPhantomPair', 'size', 'integers >= 8', `${width}x${height}`);
  }
  const pp = poseParams(animal, pose);
  const rig = buildRig(animal, pp);
  const mm = Math.max(FIELD_OF_VIEW_MM.width / width, FIELD_OF_VIEW_MM.height / height); // mm per pixel
  const ss = Math.min(3, Math.max(1, Math.ceil(mm / 0.4)));
  const plane = width * height;
  const soft = new Float32Array(plane);
  const air = new Float32Array(plane);
  const bone = new Float32Array(plane);
  const cover = new Float32Array(plane);
  const boneCover = new Float32Array(plane);
  const matFrac = new Float32Array(plane * N_MAT);
  const cos = Math.cos(pp.rotation);
  const sin = Math.sin(pp.rotation);
  // Body origin: centre the nose-to-rump extent in the image, then shift.
  const centreU = (rig.headC + rig.headA - rig.a) / 2;
  const cx = (width * mm) / 2 + pp.shift[0];
  const cy = (height * mm) / 2 + pp.shift[1];
  const k = pp.bend / (rig.a * rig.a);
  const uLim = 1.3 * rig.a; // beyond this the spine continues along its tangent
  const s: Sample = { soft: 0, air: 0, bone: 0, mat: 0 };
  const hit = { d: 0, t: 0 };
  const inv = 1 / (ss * ss);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const p = py * width + px;
      for (let sy = 0; sy < ss; sy++) {
        const y = (py + (sy + 0.5) / ss) * mm - cy;
        for (let sx = 0; sx < ss; sx++) {
          const x = (px + (sx + 0.5) / ss) * mm - cx;
          const u = cos * x + sin * y + centreU;
          const v = -sin * x + cos * y;
          const au = Math.abs(u);
          const off = au <= uLim ? k * u * u : k * (2 * uLim * au - uLim * uLim);
          sampleBody(rig, u, v - off, s, hit);
          if (s.mat === MAT_NONE) continue;
          soft[p] += s.soft * inv;
          air[p] += s.air * inv;
          bone[p] += s.bone * inv;
          cover[p] += inv;
          if (s.bone > 0) boneCover[p] += inv;
          matFrac[s.mat * plane + p] += inv;
        }
      }
    }
  }

  const rng = new Rng(mixDataSeed(animal.seed ^ 0x5bd1e995, pose + 1));
  // ---- X-ray: bright = dense. Beer-Lambert with relative attenuation coefficients per mm. ----
  const xray = createImage(width, height, 1);
  const muSoft = 0.055;
  const muBone = 0.42;
  const bedAtt = 0.06;
  for (let p = 0; p < plane; p++) {
    const d = bedAtt + muSoft * (soft[p] - air[p]) + muBone * bone[p];
    const v = 0.03 + 0.97 * (1 - Math.exp(-d)) + noise * rng.normal(0, 0.008);
    xray.data[p] = v < 0 ? 0 : v > 1 ? 1 : v;
  }

  // ---- Photo. ----
  const photo = createImage(width, height, 3);
  const pal = palette(animal);
  const bed = bedColour(animal);
  const texture = valueNoise(rng, width, height, Math.max(2, 6 / mm));
  const fine = valueNoise(rng, width, height, Math.max(1, 1.2 / mm));
  // Soft shadow: the coverage, shifted away from the light and blurred.
  const shiftX = Math.round(1.4 / mm);
  const shiftY = Math.round(1.8 / mm);
  const shifted = new Float32Array(plane);
  for (let y = 0; y < height; y++) {
    const sy = y - shiftY;
    if (sy < 0) continue;
    for (let x = shiftX; x < width; x++) shifted[y * width + x] = cover[sy * width + x - shiftX];
  }
  const br = Math.max(1, Math.round(0.9 / mm));
  const shadow = boxBlur(boxBlur(boxBlur(shifted, width, height, br), width, height, br), width, height, br);
  // Shading from the height field (top surface = half the thickness), smoothed a little.
  const hr = Math.max(1, Math.round(0.5 / mm));
  const h = boxBlur(soft, width, height, hr);
  const la = pp.lightAzimuth;
  const light = [Math.cos(la) * 0.55, Math.sin(la) * 0.55, 0.83];
  const ln = Math.hypot(light[0], light[1], light[2]);
  const lx = light[0] / ln;
  const ly = light[1] / ln;
  const lz = light[2] / ln;
  const shine = animal.fur === 'black' ? 0.12 : 0.04;
  const palFlat = new Float64Array(N_MAT * 3);
  for (let m = 0; m < N_MAT; m++) for (let c = 0; c < 3; c++) palFlat[m * 3 + c] = pal[m][c];
  const g0 = pp.gradient[0];
  const g1 = pp.gradient[1];
  const inv4mm = 1 / (4 * mm);
  const rgb = [0, 0, 0];
  const sigma = noise * 0.012;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const up = Math.max(0, y - 1) * width;
    const down = Math.min(height - 1, y + 1) * width;
    const illumY = 1 + g1 * (y / height - 0.5) * 2;
    for (let x = 0; x < width; x++) {
      const p = row + x;
      const illum = illumY + g0 * (x / width - 0.5) * 2;
      const cv = cover[p];
      const bedShade = (1 + 0.025 * texture[p] + 0.01 * fine[p]) * (1 - 0.38 * shadow[p] * (1 - cv));
      const bedW = (1 - cv) * bedShade;
      rgb[0] = bed[0] * bedW;
      rgb[1] = bed[1] * bedW;
      rgb[2] = bed[2] * bedW;
      if (cv > 0) {
        // Shading of the animal: Lambert on the height field's normal, plus a little sheen.
        const gx = (h[row + Math.min(width - 1, x + 1)] - h[row + Math.max(0, x - 1)]) * inv4mm;
        const gy = (h[down + x] - h[up + x]) * inv4mm;
        const nn = 1 / Math.sqrt(gx * gx + gy * gy + 1);
        const ndl = Math.max(0, (-gx * lx - gy * ly + lz) * nn);
        const shade = 0.5 + 0.55 * ndl;
        const n2 = ndl * ndl;
        const n4 = n2 * n2;
        const spec = shine * n4 * n4 * n4;
        for (let m = 1; m < N_MAT; m++) {
          const f = matFrac[m * plane + p];
          if (f === 0) continue;
          const k = f * shade * (m === MAT_FUR ? 1 + 0.03 * fine[p] : 1);
          const sp = m === MAT_EYE ? 0 : f * spec;
          rgb[0] += k * palFlat[m * 3] + sp;
          rgb[1] += k * palFlat[m * 3 + 1] + sp;
          rgb[2] += k * palFlat[m * 3 + 2] + sp;
        }
      }
      for (let c = 0; c < 3; c++) {
        const v = rgb[c] * illum + rng.normal(0, sigma);
        photo.data[c * plane + p] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
  const out: PhantomPair = { photo, xray };
  if (opts.withMasks) {
    const bm = createImage(width, height, 1);
    const km = createImage(width, height, 1);
    for (let p = 0; p < plane; p++) {
      bm.data[p] = cover[p] >= 0.5 ? 1 : 0;
      km.data[p] = boneCover[p] >= 0.5 ? 1 : 0;
    }
    out.bodyMask = bm;
    out.boneMask = km;
    out.boneLayer = createImage(width, height, 1, Float32Array.from(bone));
  }
  return out;
}
