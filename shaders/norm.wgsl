// Instance norm and batch norm share this shader: both normalise "groups" of elements of an NCHW tensor.
//   instance norm: a group is one (n, c) row of H*W values        (G = N*C, S = 1, segStride = 0)
//   batch norm:    a group is channel c over all n, i.e. N rows    (G = C,   S = N, segStride = C)
// Group g covers rows s * segStride + g for s < S, each row H*W contiguous floats.
//
// Work split:
//   stats, grad_sums: one workgroup per group; threads stride over the group's M = S*H*W elements and
//     tree-reduce in workgroup memory. Statistics are two-pass (mean first, then mean of squared
//     deviations) because E[x²] - mean² cancels catastrophically in fp32 when |mean| >> std.
//   normalize, input_grad: one thread per element (2-D grid of 1-D workgroups).
//   running_update, eval_stats, param_grads: one thread per channel.
//   *_serial (small groups, chosen in norm_common.ts): one thread per group, no workgroup memory and no
//     barriers, doing the whole op for its group: stats_normalize_serial = stats + normalize (three passes
//     over the group: sum, squared deviations, write y), grad_serial = grad_sums + input_grad. On a SIMD CPU
//     driver (lavapipe) the tree reduction's barriers cost more than the arithmetic of a few thousand
//     elements; sums run in four interleaved partial sums to keep fp32 rounding near the tree's.
//     When a group is one channel (batch norm, or instance norm at N = 1) the thread that owns the channel
//     also finishes the per-channel work: *_running_serial updates the running statistics (running_update)
//     and grad_affine_params_serial writes dgamma and dbeta (param_grads). Those were separate launches of a
//     few dozen threads each, and a launch, not its arithmetic, is what they cost (~0.1 ms each on lavapipe:
//     36 of the 151 dispatches of the demo's batch-norm training step).
// Backward (training statistics), with xhat = (x - mean) * rstd and g = gamma * dy:
//   dx = rstd * gamma * (dy - mean(dy) - xhat * mean(dy * xhat))    (means over the group)
//   dgamma[c] = Σ dy * xhat,  dbeta[c] = Σ dy   (over every group of channel c)
// With running statistics (eval), mean/rstd are constants: dx = rstd * gamma * dy.

override WG: u32 = 256;
override BATCH_STATS: u32 = 1; // input_grad: 1 statistics came from the batch (they depend on x), 0 running
// Activation fused after the norm (the forward writes act(norm(x)) only): 0 none, 1 ReLU, 2 LeakyReLU(SLOPE).
// Backward then reads dy through dy_at(i), which applies act' from the saved output (binding 21); the
// host appends one of two definitions of dy_at (norm_common.ts), so the plain variant binds no extra buffer.
override ACT: u32 = 0;
override SLOPE: f32 = 0.2;
// Dropout fused after the norm (and its activation): 1 multiplies the forward's output by the dropout mask
// over 1 - p (torch's Dropout in training), drawn as shaders/dropout.wgsl draws it from (drop_seed, flat
// element index), so the fused mask is the separate layer's; backward multiplies dy by the same mask. The host
// prepends shaders/random.wgsl (hash_uniform).
override DROP: u32 = 0;

fn activate(v: f32) -> f32 {
  // As activation.wgsl: select, not max, so NaN propagates as torch's relu does.
  if (ACT == 1u) { return select(v, 0.0, v < 0.0); }
  if (ACT == 2u) { return select(v * SLOPE, v, v > 0.0); }
  return v;
}

struct Params {
  hw: u32,
  channels: u32,
  groups: u32,
  segments: u32,
  seg_stride: u32,
  instance: u32,      // 1: group of row r is r (instance norm); 0: r % C (batch norm)
  n: u32,             // total elements
  accumulate: u32,    // dx (and dgamma/dbeta unless accumulate_params says otherwise) += instead of =
  param_repeat: u32,  // groups per channel for param_grads (N for instance norm, 1 for batch norm)
  drop_seed: u32,     // DROP: the dropout mask's seed (rewritten every step)
  accumulate_params: u32, // dgamma/dbeta += instead of = (differs from accumulate when D's second pass adds to
                          // its parameter gradients but starts a fresh dx)
  eps: f32,
  momentum: f32,
  unbias: f32,        // M / (M - 1): torch updates running_var with the unbiased variance
  drop_p: f32,        // DROP: the dropout probability
  drop_scale: f32,    // DROP: 1 / (1 - p)
}

@group(0) @binding(0) var<uniform> u: Params;
// Statistics (per group).
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_out: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
// Running statistics (per channel).
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read> mean_in: array<f32>;
@group(0) @binding(8) var<storage, read> var_in: array<f32>;
@group(0) @binding(9) var<storage, read> rstd_in: array<f32>;
// Normalise.
@group(0) @binding(10) var<storage, read_write> y: array<f32>;
@group(0) @binding(11) var<storage, read> gamma: array<f32>;
@group(0) @binding(12) var<storage, read> beta: array<f32>;
// Backward.
@group(0) @binding(13) var<storage, read> dy: array<f32>;
@group(0) @binding(14) var<storage, read_write> sums: array<f32>;   // [2G]: Σ dy, Σ dy*xhat
@group(0) @binding(15) var<storage, read> sums_in: array<f32>;
@group(0) @binding(16) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(17) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(18) var<storage, read_write> dx: array<f32>;
@group(0) @binding(19) var<storage, read> running_mean_in: array<f32>;
@group(0) @binding(20) var<storage, read> running_var_in: array<f32>;

var<workgroup> red0: array<f32, WG>;
var<workgroup> red1: array<f32, WG>;

// The dropout factor of element i: 0 (dropped) or 1 / (1 - p); 1 without a fused dropout.
fn drop_keep(i: u32) -> f32 {
  if (DROP == 0u) { return 1.0; }
  return select(u.drop_scale, 0.0, hash_uniform(u.drop_seed, i) < u.drop_p);
}

// The gradient reaching the norm's output: dy through the fused activation (dy_at) and the fused dropout.
fn dy_in(i: u32) -> f32 {
  if (DROP == 0u) { return dy_at(i); }
  return dy_at(i) * drop_keep(i);
}

fn group_size() -> u32 { return u.segments * u.hw; }

// Flat index of the k-th element of group g.
fn element(g: u32, k: u32) -> u32 {
  let s = k / u.hw;
  return (s * u.seg_stride + g) * u.hw + (k - s * u.hw);
}

fn group_of(i: u32) -> u32 {
  let row = i / u.hw;
  return select(row % u.channels, row, u.instance == 1u);
}

fn channel_of(i: u32) -> u32 { return (i / u.hw) % u.channels; }

fn reduce2(lid: u32, a: f32, b: f32) -> vec2f {
  red0[lid] = a;
  red1[lid] = b;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      red0[lid] += red0[lid + stride];
      red1[lid] += red1[lid + stride];
    }
    workgroupBarrier();
  }
  let r = vec2f(red0[0], red1[0]);
  workgroupBarrier(); // everyone has read the result before the scratch is reused
  return r;
}

fn group_id(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = group_id(wid, nwg);
  if (g >= u.groups) { return; }
  let m = group_size();
  var s = 0.0;
  for (var k = lid; k < m; k += WG) { s += x[element(g, k)]; }
  let mean = reduce2(lid, s, 0.0).x / f32(m);
  var q = 0.0;
  for (var k = lid; k < m; k += WG) {
    let d = x[element(g, k)] - mean;
    q += d * d;
  }
  let variance = reduce2(lid, q, 0.0).x / f32(m); // biased, used to normalise (as torch)
  if (lid == 0u) {
    mean_out[g] = mean;
    var_out[g] = variance;
    rstd_out[g] = inverseSqrt(variance + u.eps);
  }
}

// torch: running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance.
@compute @workgroup_size(WG)
fn running_update(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.channels) { return; }
  running_mean[c] = (1.0 - u.momentum) * running_mean[c] + u.momentum * mean_in[c];
  running_var[c] = (1.0 - u.momentum) * running_var[c] + u.momentum * var_in[c] * u.unbias;
}

@compute @workgroup_size(WG)
fn eval_stats(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.channels) { return; }
  mean_out[c] = running_mean_in[c];
  rstd_out[c] = inverseSqrt(running_var_in[c] + u.eps);
}

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = group_of(i);
  y[i] = activate((x[i] - mean_in[g]) * rstd_in[g]) * drop_keep(i);
}

@compute @workgroup_size(WG)
fn normalize_affine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = group_of(i);
  let c = channel_of(i);
  y[i] = activate((x[i] - mean_in[g]) * rstd_in[g] * gamma[c] + beta[c]) * drop_keep(i);
}

@compute @workgroup_size(WG)
fn grad_sums(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = group_id(wid, nwg);
  if (g >= u.groups) { return; }
  let m = group_size();
  let mean = mean_in[g];
  let rstd = rstd_in[g];
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var k = lid; k < m; k += WG) {
    let i = element(g, k);
    let d = dy_in(i);
    sdy += d;
    sdyx += d * (x[i] - mean) * rstd;
  }
  let r = reduce2(lid, sdy, sdyx);
  if (lid == 0u) {
    sums[2u * g] = r.x;
    sums[2u * g + 1u] = r.y;
  }
}

@compute @workgroup_size(WG)
fn param_grads(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.channels) { return; }
  var gb = 0.0;
  var gg = 0.0;
  for (var k = 0u; k < u.param_repeat; k++) {
    let g = k * u.channels + c;
    gb += sums_in[2u * g];
    gg += sums_in[2u * g + 1u];
  }
  dgamma[c] = select(gg, dgamma[c] + gg, u.accumulate_params == 1u);
  dbeta[c] = select(gb, dbeta[c] + gb, u.accumulate_params == 1u);
}

fn input_grad_value(i: u32, scale: f32) -> f32 {
  let g = group_of(i);
  let rstd = rstd_in[g];
  if (BATCH_STATS == 0u) { return scale * rstd * dy_in(i); }
  let m = f32(group_size());
  let xhat = (x[i] - mean_in[g]) * rstd;
  return scale * rstd * (dy_in(i) - sums_in[2u * g] / m - xhat * sums_in[2u * g + 1u] / m);
}

@compute @workgroup_size(WG)
fn input_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let v = input_grad_value(i, 1.0);
  dx[i] = select(v, dx[i] + v, u.accumulate == 1u);
}

@compute @workgroup_size(WG)
fn input_grad_affine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let v = input_grad_value(i, gamma[channel_of(i)]);
  dx[i] = select(v, dx[i] + v, u.accumulate == 1u);
}

// ---------------------------------------------------------------- one thread per group (small groups)

// Sum of f(x) over group g in four interleaved partial sums. Rows of the group: s * seg_stride + g.
fn group_row(g: u32, s: u32) -> u32 { return (s * u.seg_stride + g) * u.hw; }

fn serial_stats(g: u32) -> vec2f {
  var s4 = vec4f(0.0);
  var s1 = 0.0;
  let hw4 = u.hw & ~3u;
  for (var s = 0u; s < u.segments; s++) {
    let row = group_row(g, s);
    for (var k = 0u; k < hw4; k += 4u) { s4 += vec4f(x[row + k], x[row + k + 1u], x[row + k + 2u], x[row + k + 3u]); }
    for (var k = hw4; k < u.hw; k++) { s1 += x[row + k]; }
  }
  let m = f32(group_size());
  let mean = (s4.x + s4.y + s4.z + s4.w + s1) / m;
  var q4 = vec4f(0.0);
  var q1 = 0.0;
  for (var s = 0u; s < u.segments; s++) {
    let row = group_row(g, s);
    for (var k = 0u; k < hw4; k += 4u) {
      let d = vec4f(x[row + k], x[row + k + 1u], x[row + k + 2u], x[row + k + 3u]) - mean;
      q4 += d * d;
    }
    for (var k = hw4; k < u.hw; k++) {
      let d = x[row + k] - mean;
      q1 += d * d;
    }
  }
  return vec2f(mean, (q4.x + q4.y + q4.z + q4.w + q1) / m);
}

// Returns (mean, biased variance) for the running statistics.
fn serial_forward(g: u32, scale: f32, shift: f32) -> vec2f {
  let st = serial_stats(g);
  let rstd = inverseSqrt(st.y + u.eps);
  mean_out[g] = st.x;
  var_out[g] = st.y;
  rstd_out[g] = rstd;
  for (var s = 0u; s < u.segments; s++) {
    let row = group_row(g, s);
    for (var k = 0u; k < u.hw; k++) { y[row + k] = activate((x[row + k] - st.x) * rstd * scale + shift) * drop_keep(row + k); }
  }
  return st;
}

@compute @workgroup_size(WG)
fn stats_normalize_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  _ = serial_forward(g, 1.0, 0.0);
}

@compute @workgroup_size(WG)
fn stats_normalize_affine_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  let c = g % u.channels;  // instance: g = n*C + c; batch: g = c
  _ = serial_forward(g, gamma[c], beta[c]);
}

// Batch norm (group g = channel g) in training: stats_normalize_affine_serial plus running_update's line.
@compute @workgroup_size(WG)
fn stats_normalize_affine_running_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  let st = serial_forward(g, gamma[g], beta[g]);
  running_mean[g] = (1.0 - u.momentum) * running_mean[g] + u.momentum * st.x;
  running_var[g] = (1.0 - u.momentum) * running_var[g] + u.momentum * st.y * u.unbias;
}

// Returns (Σ dy, Σ dy * xhat) over the group: dbeta's and dgamma's share when a group is one channel.
fn serial_backward(g: u32, scale: f32) -> vec2f {
  let mean = mean_in[g];
  let rstd = rstd_in[g];
  var a4 = vec4f(0.0);
  var b4 = vec4f(0.0);
  var a1 = 0.0;
  var b1 = 0.0;
  let hw4 = u.hw & ~3u;
  for (var s = 0u; s < u.segments; s++) {
    let row = group_row(g, s);
    for (var k = 0u; k < hw4; k += 4u) {
      let i = row + k;
      let d = vec4f(dy_in(i), dy_in(i + 1u), dy_in(i + 2u), dy_in(i + 3u));
      let xh = (vec4f(x[i], x[i + 1u], x[i + 2u], x[i + 3u]) - mean) * rstd;
      a4 += d;
      b4 += d * xh;
    }
    for (var k = hw4; k < u.hw; k++) {
      let d = dy_in(row + k);
      a1 += d;
      b1 += d * (x[row + k] - mean) * rstd;
    }
  }
  let sdy = a4.x + a4.y + a4.z + a4.w + a1;
  let sdyx = b4.x + b4.y + b4.z + b4.w + b1;
  sums[2u * g] = sdy;
  sums[2u * g + 1u] = sdyx;
  let m = f32(group_size());
  for (var s = 0u; s < u.segments; s++) {
    let row = group_row(g, s);
    for (var k = 0u; k < u.hw; k++) {
      let i = row + k;
      let xhat = (x[i] - mean) * rstd;
      let v = scale * rstd * (dy_in(i) - sdy / m - xhat * sdyx / m);
      // A branch (u.accumulate is uniform), not select(v, dx[i] + v, ...), whose load of dx costs even when unused.
      if (u.accumulate == 1u) { dx[i] += v; } else { dx[i] = v; }
    }
  }
  return vec2f(sdy, sdyx);
}

// Training statistics only (BATCH_STATS = 1); dx and the per-group sums (for param_grads).
@compute @workgroup_size(WG)
fn grad_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  _ = serial_backward(g, 1.0);
}

@compute @workgroup_size(WG)
fn grad_affine_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  _ = serial_backward(g, gamma[g % u.channels]);
}

// A group is one channel (batch norm, or instance norm at N = 1): grad_affine_serial plus param_grads' lines.
@compute @workgroup_size(WG)
fn grad_affine_params_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups) { return; }
  let s = serial_backward(g, gamma[g]);
  if (u.accumulate_params == 1u) {
    dgamma[g] += s.y;
    dbeta[g] += s.x;
  } else {
    dgamma[g] = s.y;
    dbeta[g] = s.x;
  }
}
