import { addGrad } from './add-grad.js';
import { concatGrad } from './concat-grad.js';
import { identityGrad } from './identity-grad.js';
import { divGrad } from './div-grad.js';
import { expGrad } from './exp-grad.js';
import { gemmGrad } from './gemm-grad.js';
import type { GradientRule } from './gradient-rule.js';
import { logGrad } from './log-grad.js';
import { matMulGrad } from './matmul-grad.js';
import { mulGrad } from './mul-grad.js';
import { negGrad } from './neg-grad.js';
import { reduceSumGrad } from './reduce-sum-grad.js';
import { reluGrad } from './relu-grad.js';
import { reshapeGrad } from './reshape-grad.js';
import { sigmoidGrad } from './sigmoid-grad.js';
import { signGrad } from './sign-grad.js';
import { sliceGrad } from './slice-grad.js';
import { softplusGrad } from './softplus-grad.js';
import { sqrtGrad } from './sqrt-grad.js';
import { subGrad } from './sub-grad.js';
import { transposeGrad } from './transpose-grad.js';
import { expandGrad } from './expand-grad.js';

/** The reverse-mode rule of every operator the graphs use, by ONNX operator name. */
export const GRADIENT_RULES: Readonly<Record<string, GradientRule>> = {
  Add: addGrad,
  Sub: subGrad,
  Mul: mulGrad,
  Div: divGrad,
  Neg: negGrad,
  Relu: reluGrad,
  Sign: signGrad,
  Exp: expGrad,
  Log: logGrad,
  Sqrt: sqrtGrad,
  MatMul: matMulGrad,
  Gemm: gemmGrad,
  ReduceSum: reduceSumGrad,
  Transpose: transposeGrad,
  Reshape: reshapeGrad,
  Expand: expandGrad,
  Concat: concatGrad,
  Identity: identityGrad,
  Slice: sliceGrad,
  Softplus: softplusGrad,
  Sigmoid: sigmoidGrad,
};
