// A mean loss and its gradient in one pass over x (src/kernels/loss.ts lossStep): every element's term is
// summed and its gradient written by the same thread, since the gradient of a mean loss does not depend on
// the loss value. term() / dterm() come from shaders/loss_terms.wgsl (prepended).
//
// Segments: x is one segment (n elements) or two equal halves (a batched D pass: the first half against
// target t0, the second against t1), each averaged on its own: out[s] = m_s * sum of its terms, and
// dx[i] (+)= g_s * dterm(x[i], t), where the caller folds 1/segment size and the loss weight into g_s.
// THROUGH: x is the output of an activation (0 none, 1 ReLU, 2 LeakyReLU(slope), 3 tanh) and dx receives the
// gradient w.r.t. its input: dx[i] = act'(x[i]) * ([dx[i] +] g), as the conv grad-input epilogue does.
//
// Work split: `groups` workgroups of WG threads, each over a range of `perGroup` consecutive elements
// (strided by WG so neighbouring threads read neighbouring values); per-thread sums per segment, then a tree
// reduction in workgroup memory. One workgroup: it writes out[] itself (one dispatch in all); more: each
// writes its two partial sums and `finalize` adds them (two dispatches).

override WG: u32 = 256;
override THROUGH: u32 = 0;

struct Params {
  n: u32,            // elements of x
  segSize: u32,      // elements of the first segment (n when there is one)
  tensorTarget: u32, // 1: per-element targets in target_t
  accumulate: u32,   // 1: add into dx (before the THROUGH factor)
  perGroup: u32,     // elements per workgroup
  groups: u32,       // workgroups (1: write out[] directly)
  t0: f32,           // scalar targets of the two segments
  t1: f32,
  g0: f32,           // gradient scale per segment (weight / segment size)
  g1: f32,
  m0: f32,           // loss scale per segment (1 / segment size)
  m1: f32,
  slope: f32,        // THROUGH = 2
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;          // finalize: the partials
@group(0) @binding(3) var<storage, read> target_t: array<f32>;   // bound to x when the target is a scalar
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // the losses [segments], or partials [groups, 2]

var<workgroup> sums: array<vec2f, WG>;

fn through(v: f32) -> f32 {
  switch THROUGH {
    case 1u: { return select(0.0, 1.0, v > 0.0); }
    case 2u: { return select(u.slope, 1.0, v > 0.0); }
    case 3u: { return 1.0 - v * v; }
    default: { return 1.0; }
  }
}

fn reduce_pair(lid: u32, value: vec2f) -> vec2f {
  sums[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { sums[lid] = sums[lid] + sums[lid + stride]; }
    workgroupBarrier();
  }
  return sums[0];
}

@compute @workgroup_size(WG)
fn step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= u.groups) { return; }  // uniform per workgroup
  let begin = w * u.perGroup;
  let end = min(u.n, begin + u.perGroup);
  var acc = vec2f(0.0);
  for (var i = begin + lid; i < end; i += WG) {
    let second = i >= u.segSize;
    let t = select(select(u.t0, u.t1, second), target_t[i], u.tensorTarget == 1u);
    let v = x[i];
    let e = term(v, t);
    acc += select(vec2f(e, 0.0), vec2f(0.0, e), second);
    var g = select(u.g0, u.g1, second) * dterm(v, t);
    if (u.accumulate == 1u) { g += dx[i]; }
    dx[i] = g * through(v);
  }
  let total = reduce_pair(lid, acc);
  if (lid == 0u) {
    if (u.groups == 1u) {
      out[0] = total.x * u.m0;
      if (u.segSize < u.n) { out[1] = total.y * u.m1; }
    } else {
      out[2u * w] = total.x;
      out[2u * w + 1u] = total.y;
    }
  }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2f(0.0);
  for (var i = lid; i < u.groups; i += WG) { acc += vec2f(x[2u * i], x[2u * i + 1u]); }
  let total = reduce_pair(lid, acc);
  if (lid == 0u) {
    out[0] = total.x * u.m0;
    if (u.segSize < u.n) { out[1] = total.y * u.m1; }
  }
}
