// GroupNorm (torch.nn.GroupNorm): the C channels of each sample split into G groups of C/G channels;
// group (n, g) is normalised by its own mean and biased variance over its M = (C/G)*H*W values, then
// scaled and shifted per CHANNEL (gamma[c], beta[c]). Instance norm is G = C, layer norm G = 1.
// In NCHW a group is one contiguous run of M floats: group gi = n*G + g covers [gi*M, (gi+1)*M).
//
// Why not shaders/norm.wgsl: there a group shares one gamma (instance) or is one channel (batch), so the
// backward's two sums per group serve dx and dgamma alike. Here gamma varies inside a group, so dx needs
// Σ gamma_c dy and Σ gamma_c dy xhat per GROUP while dgamma needs Σ dy xhat per CHANNEL: the backward
// sums per (n, c) row first (row_sums), then combines rows into groups (group_combine) and channels
// (param_grads).
//
// Work split (the same trade as norm.wgsl, threshold chosen in src/kernels/group_norm.ts):
//   stats, row_sums: one workgroup per group / row, threads stride and tree-reduce in workgroup memory.
//   *_serial: one thread per group / row for small ones (no barriers, which cost more than the
//     arithmetic on a SIMD CPU driver); sums in four interleaved partial sums.
//   normalize*, input_grad*: one thread per element. group_combine, param_grads: one thread per group/channel.
// Statistics are two-pass (mean, then mean of squared deviations): E[x²] - mean² cancels in fp32.
// Backward, with xhat = (x - mean) * rstd and g_i = gamma[c(i)] * dy_i (means over the group):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma[c] = Σ_{n,h,w} dy xhat,  dbeta[c] = Σ_{n,h,w} dy

override WG: u32 = 256;
// Activation fused after the norm, as in norm.wgsl (the host appends dy_at; 0 none, 1 ReLU, 2 LeakyReLU).
override ACT: u32 = 0;
override SLOPE: f32 = 0.2;

fn activate(v: f32) -> f32 {
  if (ACT == 1u) { return select(v, 0.0, v < 0.0); }
  if (ACT == 2u) { return select(v * SLOPE, v, v > 0.0); }
  return v;
}

struct Params {
  hw: u32,
  channels: u32,
  groups_total: u32, // N * G
  group_size: u32,   // M = (C / G) * H * W
  cpg: u32,          // channels per group
  rows: u32,         // N * C
  n: u32,            // total elements
  accumulate: u32,
  batch: u32,        // N
  eps: f32,
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read> mean_in: array<f32>;
@group(0) @binding(8) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(13) var<storage, read> dy: array<f32>;
@group(0) @binding(14) var<storage, read_write> row_sums: array<f32>;   // [2*N*C]: Σ dy, Σ dy*xhat per (n, c)
@group(0) @binding(15) var<storage, read> row_sums_in: array<f32>;
@group(0) @binding(16) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(17) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(18) var<storage, read_write> dx: array<f32>;
@group(0) @binding(19) var<storage, read_write> group_sums: array<f32>; // [2*N*G]: Σ g, Σ g*xhat per group
@group(0) @binding(20) var<storage, read> group_sums_in: array<f32>;

var<workgroup> red0: array<f32, WG>;
var<workgroup> red1: array<f32, WG>;

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
  workgroupBarrier();
  return r;
}

fn wg_index(wid: vec3u, nwg: vec3u) -> u32 { return wid.x + wid.y * nwg.x; }
fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }
fn channel_of(i: u32) -> u32 { return (i / u.hw) % u.channels; }
// The group of (n, c) row r.
fn group_of_row(r: u32) -> u32 { return (r / u.channels) * (u.channels / u.cpg) + (r % u.channels) / u.cpg; }

// ---------------------------------------------------------------- forward

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wg_index(wid, nwg);
  if (g >= u.groups_total) { return; }
  let m = u.group_size;
  let base = g * m;
  var s = 0.0;
  for (var k = lid; k < m; k += WG) { s += x[base + k]; }
  let mean = reduce2(lid, s, 0.0).x / f32(m);
  var q = 0.0;
  for (var k = lid; k < m; k += WG) {
    let d = x[base + k] - mean;
    q += d * d;
  }
  let variance = reduce2(lid, q, 0.0).x / f32(m);
  if (lid == 0u) {
    mean_out[g] = mean;
    rstd_out[g] = inverseSqrt(variance + u.eps);
  }
}

// Mean and biased variance of the contiguous run [base, base + m), four partial sums.
fn serial_stats(base: u32, m: u32) -> vec2f {
  var s4 = vec4f(0.0);
  var s1 = 0.0;
  let m4 = m & ~3u;
  for (var k = 0u; k < m4; k += 4u) { s4 += vec4f(x[base + k], x[base + k + 1u], x[base + k + 2u], x[base + k + 3u]); }
  for (var k = m4; k < m; k++) { s1 += x[base + k]; }
  let mean = (s4.x + s4.y + s4.z + s4.w + s1) / f32(m);
  var q4 = vec4f(0.0);
  var q1 = 0.0;
  for (var k = 0u; k < m4; k += 4u) {
    let d = vec4f(x[base + k], x[base + k + 1u], x[base + k + 2u], x[base + k + 3u]) - mean;
    q4 += d * d;
  }
  for (var k = m4; k < m; k++) {
    let d = x[base + k] - mean;
    q1 += d * d;
  }
  return vec2f(mean, (q4.x + q4.y + q4.z + q4.w + q1) / f32(m));
}

@compute @workgroup_size(WG)
fn stats_normalize_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups_total) { return; }
  let base = g * u.group_size;
  let st = serial_stats(base, u.group_size);
  let rstd = inverseSqrt(st.y + u.eps);
  mean_out[g] = st.x;
  rstd_out[g] = rstd;
  for (var k = 0u; k < u.group_size; k++) { y[base + k] = activate((x[base + k] - st.x) * rstd); }
}

@compute @workgroup_size(WG)
fn stats_normalize_affine_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups_total) { return; }
  let base = g * u.group_size;
  let st = serial_stats(base, u.group_size);
  let rstd = inverseSqrt(st.y + u.eps);
  mean_out[g] = st.x;
  rstd_out[g] = rstd;
  for (var k = 0u; k < u.group_size; k++) {
    let c = channel_of(base + k);
    y[base + k] = activate((x[base + k] - st.x) * rstd * gamma[c] + beta[c]);
  }
}

@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = i / u.group_size;
  y[i] = activate((x[i] - mean_in[g]) * rstd_in[g]);
}

@compute @workgroup_size(WG)
fn normalize_affine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = i / u.group_size;
  let c = channel_of(i);
  y[i] = activate((x[i] - mean_in[g]) * rstd_in[g] * gamma[c] + beta[c]);
}

// ---------------------------------------------------------------- backward

@compute @workgroup_size(WG)
fn row_sums_tree(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wg_index(wid, nwg);
  if (r >= u.rows) { return; }
  let g = group_of_row(r);
  let mean = mean_in[g];
  let rstd = rstd_in[g];
  let base = r * u.hw;
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var k = lid; k < u.hw; k += WG) {
    let d = dy_at(base + k);
    sdy += d;
    sdyx += d * (x[base + k] - mean) * rstd;
  }
  let s = reduce2(lid, sdy, sdyx);
  if (lid == 0u) {
    row_sums[2u * r] = s.x;
    row_sums[2u * r + 1u] = s.y;
  }
}

@compute @workgroup_size(WG)
fn row_sums_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = flat(gid, nwg);
  if (r >= u.rows) { return; }
  let g = group_of_row(r);
  let mean = mean_in[g];
  let rstd = rstd_in[g];
  let base = r * u.hw;
  var a4 = vec4f(0.0);
  var b4 = vec4f(0.0);
  var a1 = 0.0;
  var b1 = 0.0;
  let hw4 = u.hw & ~3u;
  for (var k = 0u; k < hw4; k += 4u) {
    let i = base + k;
    let d = vec4f(dy_at(i), dy_at(i + 1u), dy_at(i + 2u), dy_at(i + 3u));
    a4 += d;
    b4 += d * (vec4f(x[i], x[i + 1u], x[i + 2u], x[i + 3u]) - mean) * rstd;
  }
  for (var k = hw4; k < u.hw; k++) {
    let d = dy_at(base + k);
    a1 += d;
    b1 += d * (x[base + k] - mean) * rstd;
  }
  row_sums[2u * r] = a4.x + a4.y + a4.z + a4.w + a1;
  row_sums[2u * r + 1u] = b4.x + b4.y + b4.z + b4.w + b1;
}

// Per group: Σ gamma_c Σdy_row and Σ gamma_c Σ(dy xhat)_row over the group's cpg rows.
@compute @workgroup_size(WG)
fn group_combine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups_total) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var k = 0u; k < u.cpg; k++) {
    let r = g * u.cpg + k; // rows of group g are contiguous: n*C + gg*cpg + k = (n*G + gg)*cpg + k
    a += row_sums_in[2u * r];
    b += row_sums_in[2u * r + 1u];
  }
  group_sums[2u * g] = a;
  group_sums[2u * g + 1u] = b;
}

@compute @workgroup_size(WG)
fn group_combine_affine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = flat(gid, nwg);
  if (g >= u.groups_total) { return; }
  var a = 0.0;
  var b = 0.0;
  for (var k = 0u; k < u.cpg; k++) {
    let r = g * u.cpg + k;
    let s = gamma[r % u.channels];
    a += s * row_sums_in[2u * r];
    b += s * row_sums_in[2u * r + 1u];
  }
  group_sums[2u * g] = a;
  group_sums[2u * g + 1u] = b;
}

@compute @workgroup_size(WG)
fn param_grads(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= u.channels) { return; }
  var gb = 0.0;
  var gg = 0.0;
  for (var n = 0u; n < u.batch; n++) {
    let r = n * u.channels + c;
    gb += row_sums_in[2u * r];
    gg += row_sums_in[2u * r + 1u];
  }
  dgamma[c] = select(gg, dgamma[c] + gg, u.accumulate == 1u);
  dbeta[c] = select(gb, dbeta[c] + gb, u.accumulate == 1u);
}

fn input_grad_value(i: u32, scale: f32) -> f32 {
  let g = i / u.group_size;
  let rstd = rstd_in[g];
  let m = f32(u.group_size);
  let xhat = (x[i] - mean_in[g]) * rstd;
  return rstd * (scale * dy_at(i) - group_sums_in[2u * g] / m - xhat * group_sums_in[2u * g + 1u] / m);
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
