import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The wire contract, loaded once from proto/infobound.proto (the only place it is defined). */
const PROTO_PATH = fileURLToPath(new URL('../../proto/infobound.proto', import.meta.url));

const definition = protoLoader.loadSync(PROTO_PATH, {
  // Field names as in the .proto (snake_case), 64-bit integers as JS numbers (steps and offsets stay
  // far below 2^53), enums as their names, defaults filled in so absent fields read as zero values.
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

const pkg = (grpc.loadPackageDefinition(definition) as unknown as { infobound: { v1: Record<string, grpc.ServiceClientConstructor> } }).infobound.v1;

/** Client constructor and service definition of Coordinator. */
export const CoordinatorService = pkg.Coordinator!;
/** Client constructor and service definition of Peer. */
export const PeerService = pkg.Peer!;

/**
 * The bank's message type (BankKeys), for encoding outside gRPC: bank keys travel over NATS, and
 * proto-loader only serialises messages of services. protobufjs reads the same file.
 */
const bankTypes = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
export const BankKeysType = bankTypes.lookupType('infobound.v1.BankKeys');
/** The signed wrapper a NATS bank message carries (SignedBankKeys). */
export const SignedBankKeysType = bankTypes.lookupType('infobound.v1.SignedBankKeys');
