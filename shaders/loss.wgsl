// Loss terms and their elementwise gradients for the mean losses (BCE with logits, MSE, L1).
// Appended to shaders/reduce.wgsl, whose Params (u), bindings (dst, x, target_t) and tree-reduction
// entry points it uses: forward = reduce.wgsl's partial_* + finalize with the `term` defined here.
// LOSS selects the loss at pipeline creation: 0 BCE with logits, 1 MSE, 2 L1.
//
// Backward work split: one thread per element over a 2-D grid of 1-D workgroups
// (i = gid.x + gid.y * nwg.x * WG), writing dst[i] (+)= scale * dterm(x[i], target_i), where the
// caller folds 1/n and its loss weight into `scale`.

// term(), dterm() and the LOSS override: shaders/loss_terms.wgsl (src/kernels/loss.ts prepends it).

fn flat(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn backward_scalar(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = u.scale * dterm(x[i], u.target_value);
  dst[i] = select(g, dst[i] + g, u.accumulate == 1u);
}

@compute @workgroup_size(WG)
fn backward_tensor(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat(gid, nwg);
  if (i >= u.n) { return; }
  let g = u.scale * dterm(x[i], target_t[i]);
  dst[i] = select(g, dst[i] + g, u.accumulate == 1u);
}
