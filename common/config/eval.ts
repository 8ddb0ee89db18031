import { bool, int, num, section, type SectionValue } from './field.js';

export const EVAL = section('Evaluation of the learned embeddings.', {
  enabled: bool({
    default: true,
    doc: 'Evaluate the embeddings: weighted k-NN accuracy for images, retrieval recall/MRR on held-out queries for click logs.',
  }),
  knn_k: int({ ge: 1, default: 200, doc: 'Neighbours that vote in the weighted k-NN classifier (the protocol MoCo and InstDisc report).' }),
  knn_temperature: num({ gt: 0, default: 0.07, doc: 'Temperature of the k-NN vote weights exp(similarity / t).' }),
  knn_train: int({ ge: 1, default: 10000, doc: 'Training images embedded as the k-NN reference set (the first N).' }),
  knn_test: int({ ge: 1, default: 2000, doc: 'Test images classified by k-NN (the first N).' }),
  max_queries: int({
    ge: 1,
    default: 5000,
    doc: 'Held-out click-log queries evaluated for retrieval at most, which bounds evaluation time.',
    flag: { name: 'eval-queries', arg: 'N' },
  }),
  sites_sample: int({
    ge: 0,
    default: 0,
    doc: 'Rank held-out click-log pairs against this many sites drawn at random instead of all of them: a quick, biased estimate on huge vocabularies, reported as sampled_sites; 0 ranks against every site.',
    flag: { name: 'sites-sample', arg: 'N' },
  }),
});

/** Evaluation settings (`eval:`). */
export type EvalConfig = SectionValue<typeof EVAL>;
