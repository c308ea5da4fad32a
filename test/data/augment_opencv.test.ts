// The CPU reference against OpenCV itself (Debian's python3-opencv 4.6.0, numpy 1.24): the values below were made by
// the script in the comment at the end of this file (`/usr/bin/python3 script.py`), on the same smooth 7x9 image.
// cv2.warpAffine quantises source positions to 1/32 px (INTER_TAB_SIZE): with that emulated, warps agree to float32
// precision, as do resize, blur and HSV on float32 images.
import { describe, it } from 'vitest';
import { expectClose } from '../helpers/compare.js';
import { borderIndex, colorCpu, hsvToRgb, rgbToHsv, warpCpu, type PlanarImage } from '../../src/data/augment_cpu.js';
import { gaussianKernel, invertAffine, rotationMatrix2D, type Affine, type WarpOp } from '../../src/data/augment_params.js';
import type { BorderMode } from '../../src/data/augment_schema.js';

const CV2 = {"M": [[0.7794228634059949, 0.44999999999999996, 0.2323085463760206], [-0.44999999999999996, 0.7794228634059949, 2.0617314097820154]], "warp_constant": [0.25, 0.25, 0.25, 0.426723, 0.315303, 0.178234, 0.206499, 0.365137, 0.322501, 0.25, 0.496691, 0.841997, 0.693348, 0.465274, 0.318523, 0.325289, 0.437114, 0.493656, 0.493075, 0.775559, 0.837846, 0.722831, 0.554556, 0.461631, 0.50177, 0.597948, 0.62885, 0.339226, 0.626416, 0.702611, 0.626213, 0.517431, 0.49994, 0.61275, 0.761509, 0.798699, 0.25, 0.445731, 0.536703, 0.452701, 0.369488, 0.412715, 0.586081, 0.783782, 0.755346, 0.25, 0.272873, 0.457166, 0.310283, 0.196531, 0.256109, 0.453439, 0.436854, 0.25, 0.25, 0.25, 0.332627, 0.310271, 0.149325, 0.198347, 0.25, 0.25, 0.25], "warp_replicate": [0.82294, 0.889156, 0.789948, 0.564173, 0.315303, 0.178234, 0.206499, 0.365137, 0.443337, 0.700101, 0.85724, 0.861093, 0.693348, 0.465274, 0.318523, 0.325289, 0.437114, 0.5099, 0.618208, 0.775559, 0.837846, 0.722831, 0.554556, 0.461631, 0.50177, 0.597948, 0.62885, 0.606903, 0.626416, 0.702611, 0.626213, 0.517431, 0.49994, 0.61275, 0.761509, 0.798699, 0.573835, 0.548257, 0.536703, 0.452701, 0.369488, 0.412715, 0.586081, 0.783782, 0.871965, 0.525707, 0.493973, 0.457166, 0.310283, 0.196531, 0.256109, 0.460001, 0.709949, 0.864473, 0.470592, 0.440853, 0.415254, 0.310271, 0.149325, 0.158172, 0.326649, 0.564397, 0.78302], "warp_reflect": [0.769791, 0.862359, 0.789948, 0.564173, 0.315303, 0.178234, 0.206499, 0.365137, 0.443337, 0.696273, 0.85724, 0.861093, 0.693348, 0.465274, 0.318523, 0.325289, 0.437114, 0.5099, 0.618208, 0.775559, 0.837846, 0.722831, 0.554556, 0.461631, 0.50177, 0.597948, 0.62885, 0.606903, 0.626416, 0.702611, 0.626213, 0.517431, 0.49994, 0.61275, 0.761509, 0.798699, 0.616462, 0.548257, 0.536703, 0.452701, 0.369488, 0.412715, 0.586081, 0.783782, 0.871965, 0.565779, 0.493973, 0.457166, 0.310283, 0.196531, 0.256109, 0.460001, 0.709949, 0.85361, 0.410192, 0.393047, 0.415254, 0.310271, 0.149325, 0.158172, 0.326649, 0.557487, 0.718714], "warp_wrap": [0.25682, 0.156077, 0.212954, 0.508303, 0.315303, 0.178234, 0.206499, 0.365137, 0.506744, 0.307806, 0.43514, 0.838638, 0.693348, 0.465274, 0.318523, 0.325289, 0.437114, 0.508792, 0.54263, 0.775559, 0.837846, 0.722831, 0.554556, 0.461631, 0.50177, 0.597948, 0.62885, 0.42529, 0.626416, 0.702611, 0.626213, 0.517431, 0.49994, 0.61275, 0.761509, 0.798699, 0.366801, 0.510682, 0.536703, 0.452701, 0.369488, 0.412715, 0.586081, 0.783782, 0.731773, 0.430074, 0.506345, 0.457166, 0.310283, 0.196531, 0.256109, 0.462514, 0.459374, 0.138884, 0.591718, 0.619451, 0.511235, 0.310271, 0.149325, 0.458783, 0.675103, 0.439432, 0.258155], "warp_reflect_101": [0.65553, 0.767686, 0.754453, 0.560736, 0.315303, 0.178234, 0.206499, 0.365137, 0.395068, 0.66506, 0.831274, 0.859712, 0.693348, 0.465274, 0.318523, 0.325289, 0.437114, 0.510743, 0.655501, 0.775559, 0.837846, 0.722831, 0.554556, 0.461631, 0.50177, 0.597948, 0.62885, 0.755024, 0.626416, 0.702611, 0.626213, 0.517431, 0.49994, 0.61275, 0.761509, 0.798699, 0.721967, 0.578903, 0.536703, 0.452701, 0.369488, 0.412715, 0.586081, 0.783782, 0.858661, 0.584224, 0.483883, 0.457166, 0.310283, 0.196531, 0.256109, 0.46024, 0.68617, 0.7728, 0.4141, 0.318431, 0.336972, 0.310271, 0.149325, 0.1867, 0.359717, 0.538026, 0.605919], "resize_up": [0.681859, 0.702147, 0.688693, 0.628857, 0.526111, 0.420723, 0.338129, 0.288735, 0.571224, 0.57917, 0.573901, 0.550466, 0.510226, 0.468952, 0.436604, 0.417259, 0.44187, 0.435385, 0.439685, 0.458811, 0.491654, 0.525341, 0.551741, 0.56753, 0.321054, 0.301092, 0.31433, 0.373207, 0.474307, 0.578007, 0.659278, 0.70788, 0.230344, 0.200263, 0.220212, 0.308934, 0.461284, 0.61755, 0.740018, 0.813257], "resize_down": [0.73391, 0.762655, 0.258439, 0.245657, 0.518016, 0.520231, 0.481394, 0.48041, 0.279919, 0.252873, 0.72728, 0.739306], "blur5": [0.731089, 0.758108, 0.772217, 0.685418, 0.511414, 0.332042, 0.231663, 0.231158, 0.251775, 0.7028, 0.726511, 0.738893, 0.662719, 0.510017, 0.352603, 0.264512, 0.264069, 0.282162, 0.624858, 0.639457, 0.647079, 0.600182, 0.506167, 0.409252, 0.355017, 0.354744, 0.365883, 0.516347, 0.518258, 0.519256, 0.513116, 0.500807, 0.488119, 0.481019, 0.480983, 0.482441, 0.403833, 0.392589, 0.386718, 0.422839, 0.49525, 0.569895, 0.611667, 0.611878, 0.603298, 0.317082, 0.295695, 0.284527, 0.353233, 0.490965, 0.632947, 0.712401, 0.712801, 0.696482, 0.283985, 0.258729, 0.245541, 0.326678, 0.489331, 0.657001, 0.750832, 0.751305, 0.732033], "blur7s": [0.726826, 0.735557, 0.725849, 0.647936, 0.509107, 0.365994, 0.277499, 0.256743, 0.26074, 0.699059, 0.70672, 0.698201, 0.629826, 0.507992, 0.382399, 0.304737, 0.286522, 0.290029, 0.622555, 0.627272, 0.622027, 0.57993, 0.50492, 0.427596, 0.379782, 0.368568, 0.370727, 0.516045, 0.516663, 0.515976, 0.510465, 0.500644, 0.490521, 0.484261, 0.482793, 0.483075, 0.406416, 0.402814, 0.406819, 0.438964, 0.496243, 0.555288, 0.591799, 0.600363, 0.598714, 0.323251, 0.316448, 0.324013, 0.384724, 0.492904, 0.604421, 0.673378, 0.689552, 0.686438, 0.291988, 0.283982, 0.292884, 0.364334, 0.491649, 0.622891, 0.704045, 0.72308, 0.719415], "rgb": [0.8999999761581421, 0.10000000149011612, 0.20000000298023224, 0.20000000298023224, 0.800000011920929, 0.30000001192092896, 0.10000000149011612, 0.30000001192092896, 0.949999988079071, 0.5, 0.5, 0.5, 0.699999988079071, 0.6000000238418579, 0.10000000149011612, 0.05000000074505806, 0.8999999761581421, 0.8500000238418579], "hsv": [352.5, 0.88889, 0.9, 130.0, 0.75, 0.8, 225.88235, 0.89474, 0.95, 0.0, 0.0, 0.5, 49.99999, 0.85714, 0.7, 176.47058, 0.94444, 0.9], "hsv_back": [0.9, 0.492083, 0.01, 0.12, 0.8, 0.686667, 0.412647, 0.005, 0.95, 0.5, 0.483333, 0.45, 0.365, 0.7, 0.03, 0.0, 0.352941, 0.9]}
;

const H = 7;
const W = 9;
const img: PlanarImage = {
  width: W,
  height: H,
  channels: 1,
  data: Float32Array.from({ length: H * W }, (_, i) => 0.5 + 0.4 * Math.sin(0.7 * (i % W) + 0.3) * Math.cos(0.5 * Math.floor(i / W))),
};

describe('CPU reference vs OpenCV 4.6', () => {
  it('cv2.getRotationMatrix2D about the exact centre, plus a shift', () => {
    const m = rotationMatrix2D((W - 1) / 2, (H - 1) / 2, 30, 0.9);
    m[2] += 0.7;
    m[5] -= 0.4;
    expectClose(m, CV2.M.flat(), { atol: 1e-12, rtol: 0, label: 'matrix' });
  });

  // cv2.warpAffine's fixed point (imgwarp.cpp, WarpAffineInvoker): with AB_BITS = 10 and INTER_BITS = 5,
  // X = (round(M0 x 1024) + round((M1 y + M2) 1024) + 16) >> 5 in 1/32 px. Emulated per pixel through a 1x1 remap of
  // the reference, the reference must then agree with OpenCV to float32 precision; unquantised, to gradient / 64.
  const quantised = (M: Affine, border: BorderMode) => {
    const inv = invertAffine(M);
    const out = new Float64Array(H * W);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const q = (a: number, b: number, c: number) => Math.floor((Math.round(a * x * 1024) + Math.round((b * y + c) * 1024) + 16) / 32) / 32;
        const op: WarpOp = {
          kind: 'warp',
          inverse: [1, 0, 0, 0, 1, 0],
          mapX: Float64Array.of(q(inv[0], inv[1], inv[2])),
          mapY: Float64Array.of(q(inv[3], inv[4], inv[5])),
          window: [0, 0, W, H],
          border,
          fillA: [0.25],
          fillB: [0.25],
        };
        out[y * W + x] = warpCpu(img, op, 1, 1, [0.25])[0];
      }
    }
    return out;
  };

  for (const border of ['constant', 'replicate', 'reflect', 'wrap', 'reflect_101'] as BorderMode[]) {
    it(`cv2.warpAffine INTER_LINEAR, BORDER_${border.toUpperCase()}`, () => {
      const M = CV2.M.flat() as Affine;
      const want = (CV2 as unknown as Record<string, number[]>)[`warp_${border}`];
      expectClose(quantised(M, border), want, { atol: 2e-6, rtol: 0, label: `warp ${border} (OpenCV's 1/32 px positions)` });
      const op: WarpOp = { kind: 'warp', matrix: M, inverse: invertAffine(M), window: [0, 0, W, H], border, fillA: [0.25], fillB: [0.25] };
      // Exact positions: the steepest step (image to fill, or a wrap seam) is about 0.6, and 0.6 / 64 < 1e-2.
      expectClose(warpCpu(img, op, W, H, [0.25]), want, { atol: 1e-2, rtol: 0, label: `warp ${border}` });
    });
  }

  it('cv2.resize INTER_LINEAR (the RandomResizedCrop warp), up and down', () => {
    const resize = (x: number, y: number, cw: number, ch: number, ow: number, oh: number) => {
      const sx = cw / ow;
      const sy = ch / oh;
      const inverse: Affine = [sx, 0, x + 0.5 * sx - 0.5, 0, sy, y + 0.5 * sy - 0.5];
      const op: WarpOp = { kind: 'warp', inverse, window: [x, y, cw, ch], border: 'replicate', fillA: [0], fillB: [0] };
      return warpCpu(img, op, ow, oh, [0]);
    };
    expectClose(resize(1, 2, 6, 4, 8, 5), CV2.resize_up, { atol: 2e-6, rtol: 0, label: 'resize up' });
    expectClose(resize(0, 0, W, H, 4, 3), CV2.resize_down, { atol: 2e-6, rtol: 0, label: 'resize down' });
  });

  it('cv2.GaussianBlur (BORDER_REFLECT_101): table kernel and sigma kernel', () => {
    expectClose(colorCpu(img, { kind: 'blur', ksize: 5, sigma: 0, weights: gaussianKernel(5, 0) }), CV2.blur5, { atol: 2e-6, rtol: 0, label: 'blur 5' });
    expectClose(colorCpu(img, { kind: 'blur', ksize: 7, sigma: 1.3, weights: gaussianKernel(7, 1.3) }), CV2.blur7s, { atol: 2e-6, rtol: 0, label: 'blur 7, sigma 1.3' });
  });

  it('cv2.cvtColor RGB2HSV / HSV2RGB on float32 (hue in degrees)', () => {
    const hsv: number[] = [];
    const back: number[] = [];
    for (let i = 0; i < CV2.rgb.length; i += 3) {
      const [h, s, v] = rgbToHsv(CV2.rgb[i], CV2.rgb[i + 1], CV2.rgb[i + 2]);
      hsv.push(h, s, v);
      back.push(...hsvToRgb((h + 40) % 360, Math.min(1, s + 0.1), v));
    }
    expectClose(hsv, CV2.hsv, { atol: 2e-4, rtol: 0, label: 'RGB2HSV' });
    expectClose(back, CV2.hsv_back, { atol: 2e-6, rtol: 0, label: 'HSV2RGB' });
  });

  it('reflect and reflect_101 differ at the edge, so the warp fixtures tell them apart', () => {
    // Sanity: reflect and reflect_101 differ, so the fixtures above discriminate between them.
    expectClose([borderIndex(-1, W, 'reflect')], [0], { atol: 0, rtol: 0 });
    expectClose([borderIndex(-1, W, 'reflect_101')], [1], { atol: 0, rtol: 0 });
  });
});

/* The script that made CV2:
import cv2, numpy as np, json
H, W = 7, 9
y, x = np.mgrid[0:H, 0:W]
img = (0.5 + 0.4 * np.sin(0.7 * x + 0.3) * np.cos(0.5 * y)).astype(np.float32)
M = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), 30, 0.9)
M[0, 2] += 0.7; M[1, 2] -= 0.4
out = {"M": M.tolist()}
for name, code in [("constant", cv2.BORDER_CONSTANT), ("replicate", cv2.BORDER_REPLICATE), ("reflect", cv2.BORDER_REFLECT), ("wrap", cv2.BORDER_WRAP), ("reflect_101", cv2.BORDER_REFLECT_101)]:
    r = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=code, borderValue=0.25)
    out["warp_" + name] = [round(float(v), 6) for v in r.ravel()]
crop = img[2:6, 1:7]
out["resize_up"] = [round(float(v), 6) for v in cv2.resize(crop, (8, 5), interpolation=cv2.INTER_LINEAR).ravel()]
out["resize_down"] = [round(float(v), 6) for v in cv2.resize(img, (4, 3), interpolation=cv2.INTER_LINEAR).ravel()]
out["blur5"] = [round(float(v), 6) for v in cv2.GaussianBlur(img, (5, 5), 0).ravel()]
out["blur7s"] = [round(float(v), 6) for v in cv2.GaussianBlur(img, (7, 7), 1.3).ravel()]
rgb = np.array([[[0.9, 0.1, 0.2], [0.2, 0.8, 0.3], [0.1, 0.3, 0.95], [0.5, 0.5, 0.5], [0.7, 0.6, 0.1], [0.05, 0.9, 0.85]]], np.float32)
out["rgb"] = rgb.ravel().tolist()
out["hsv"] = [round(float(v), 5) for v in cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).ravel()]
hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
hsv[..., 0] = np.mod(hsv[..., 0] + 40, 360); hsv[..., 1] = np.clip(hsv[..., 1] + 0.1, 0, 1)
out["hsv_back"] = [round(float(v), 6) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).ravel()]
print(json.dumps(out))
*/
