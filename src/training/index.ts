// Distributed training runtime: the built-in MLP trainer and MNIST shards, the external-trainer
// protocol, /dbc/allreduce/1.0.0 over libp2p, the peer-side service and the submitter's session.
export { Mlp, mlpParamCount, type MlpShape, type MlpOptions } from './mlp.js'
export { loadMnist, shardIndices, subset, type Dataset } from './mnist.js'
export { parseTrainingSpec, trainingSpecSchema, type TrainingSpec, type TrainingSpecInput } from './spec.js'
export { MlpTrainer, createMlpTrainer, type Trainer, type StepResult, type EvalResult } from './trainer.js'
export { ExternalTrainer, serveExternalTrainer, type ExternalTrainerHandler } from './external.js'
export { TrainerRegistry, trainerEnv, type TrainerRegistryInit } from './trainers.js'
export { TrainingTransport, ALLREDUCE_PROTOCOL, type TrainingHost } from './transport.js'
export { TrainingWorker, TrainingError, type RoundMetering } from './worker.js'
export { TrainingService, type TrainingServiceInit } from './service.js'
export { createReceiptMeter, roundTaskId, type ReceiptMeterInit } from './metering.js'
export { TrainingSession, runTrainingJob, encodeModel, decodeModel, type TrainingProgress, type TrainingResult, type RoundMeterRecord } from './session.js'
