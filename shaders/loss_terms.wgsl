// Loss terms and their elementwise derivatives (BCE with logits, MSE, L1), shared by shaders/loss.wgsl (the
// two-pass reduction + backward) and shaders/loss_fused.wgsl (loss and gradient in one dispatch).
// LOSS selects the loss at pipeline creation: 0 BCE with logits, 1 MSE, 2 L1.

override LOSS: u32 = 0;

// log(1 + e) for e in (0, 1]; fp32 1 + e loses e below 6e-8, the series e - e²/2 keeps it.
fn log1p_small(e: f32) -> f32 {
  return select(log(1.0 + e), e - 0.5 * e * e, e < 1e-4);
}

fn term(v: f32, t: f32) -> f32 {
  switch LOSS {
    // Numerically stable BCE with logits, as torch's binary_cross_entropy_with_logits:
    // max(v, 0) - v t + log(1 + exp(-|v|)); exp never overflows.
    case 0u: { return max(v, 0.0) - v * t + log1p_small(exp(-abs(v))); }
    case 1u: { let d = v - t; return d * d; }
    default: { return abs(v - t); }
  }
}

fn dterm(v: f32, t: f32) -> f32 {
  switch LOSS {
    case 0u: {
      let e = exp(-abs(v));
      let s = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0); // sigmoid(v) without overflow either way
      return s - t;
    }
    case 1u: { return 2.0 * (v - t); }
    default: { return sign(v - t); } // sign(0) = 0, as torch's L1 gradient
  }
}
