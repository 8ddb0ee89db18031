import { bool, int, num, section, type SectionValue } from './field.js';

const AUGMENT = section('Random augmentations that make the two views of an image; each view draws its own.', {
  crop_pad: int({ ge: 0, default: 2, doc: 'Random translation of up to ± this many pixels (zero-pad, then crop back); 0 disables.' }),
  flip: bool({ default: true, doc: 'Mirror left-right with probability 1/2.' }),
  brightness: num({ ge: 0, default: 0.3, doc: 'Add one offset drawn from [−b, b] to every pixel (pixels in [0, 1]); 0 disables.' }),
  contrast: num({
    ge: 0,
    le: 1,
    default: 0.3,
    doc: "Scale pixels' distance from the image mean by a factor drawn from [1−c, 1+c]; at most 1 so the factor stays ≥ 0; 0 disables.",
  }),
  noise: num({ ge: 0, default: 0.05, doc: 'Standard deviation of Gaussian noise added to every pixel (pixels in [0, 1]); 0 disables.' }),
  erase: num({ ge: 0, le: 1, default: 0.25, doc: 'Probability of zeroing one random rectangle (random erasing, Zhong et al. 2017).' }),
});

/** Image augmentation settings (`images.augment:`); each view of an image draws its own. */
export type AugmentConfig = SectionValue<typeof AUGMENT>;

export const IMAGES = section('Image encoder trained on IDX files (the MNIST / Fashion-MNIST layout).', {
  hidden_dim: int({ ge: 1, le: 16384, default: 256, doc: 'Width of the dense hidden layer after the convolutions.' }),
  output_dim: int({ ge: 1, le: 4096, default: 128, doc: 'Width d of the output embedding (unit-normalised).' }),
  channels: int({ ge: 1, le: 1024, default: 32, doc: 'Channels of the convolution layers: more capacity, roughly quadratic compute.' }),
  augment: AUGMENT,
  max_train: int({ ge: 0, default: 0, doc: 'Use only the first N training images (for quick runs); 0 uses all.' }),
});

/** Image-encoder settings (`images:`). */
export type ImagesConfig = SectionValue<typeof IMAGES>;
