/**
 * @module gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), so that grpcurl, buf curl
 * and Postman can list and call Parley's services without its .proto files. connect-node has no
 * reflection (connect-es #507) and the grpc-js package plugs only into a grpc-js server, so it
 * is written here over the file descriptors protobuf-es embeds in the generated code.
 */
import { createRegistry, type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "@parley/gen/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1alpha } from "@parley/gen/grpc/reflection/v1alpha/reflection_pb";

/** The request fields both protocol versions share. */
interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { readonly case: "fileByFilename" | "fileContainingSymbol"; readonly value: string }
    | { readonly case: "allExtensionNumbersOfType" | "listServices"; readonly value: string }
    | {
        readonly case: "fileContainingExtension";
        readonly value: { readonly containingType: string; readonly extensionNumber: number };
      }
    | { readonly case: undefined; readonly value?: undefined };
}

/**
 * A response both versions accept, without `original_request` (each version adds its own). The
 * generated init types of v1 and v1alpha differ only in their type names, so one plain shape
 * serves both.
 */
interface ReflectionAnswer {
  readonly messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | {
        case: "allExtensionNumbersResponse";
        value: { baseTypeName: string; extensionNumber: number[] };
      }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };
}

/** Options of {@link createReflectionServices}. */
export interface ReflectionOptions {
  /** The services to list, e.g. InferenceService and Health; both reflection services are added. */
  readonly services: readonly DescService[];
}

/** The reflection service implementations, one per protocol version, ready to register. */
export interface ReflectionServices {
  readonly v1: [typeof ServerReflectionV1, ServiceImpl<typeof ServerReflectionV1>];
  readonly v1alpha: [typeof ServerReflectionV1alpha, ServiceImpl<typeof ServerReflectionV1alpha>];
}

/** Creates both reflection services over the files that define `services`. */
export function createReflectionServices(options: ReflectionOptions): ReflectionServices {
  const services = [...options.services, ServerReflectionV1, ServerReflectionV1alpha];
  const answer = createAnswerer(services);
  return {
    v1: [
      ServerReflectionV1,
      {
        async *serverReflectionInfo(requests) {
          for await (const request of requests) {
            yield { ...answer(request), originalRequest: request };
          }
        },
      },
    ],
    v1alpha: [
      ServerReflectionV1alpha,
      {
        async *serverReflectionInfo(requests) {
          for await (const request of requests) {
            yield { ...answer(request), originalRequest: request };
          }
        },
      },
    ],
  };
}

function createAnswerer(
  services: readonly DescService[],
): (request: ReflectionRequest) => ReflectionAnswer {
  const files = new Map<string, DescFile>();
  const addFile = (file: DescFile) => {
    if (!files.has(file.proto.name)) {
      files.set(file.proto.name, file);
      file.dependencies.forEach(addFile);
    }
  };
  for (const service of services) {
    addFile(service.file);
  }
  const registry = createRegistry(...files.values());
  const serialized = new Map<DescFile, Uint8Array>();
  const serialize = (file: DescFile) => {
    let bytes = serialized.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      serialized.set(file, bytes);
    }
    return bytes;
  };

  /** The file and everything it imports, transitively, the file first: clients need them all. */
  const withDependencies = (file: DescFile): ReflectionAnswer => {
    const closure = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (!closure.has(f)) {
        closure.add(f);
        f.dependencies.forEach(visit);
      }
    };
    visit(file);
    return {
      messageResponse: {
        case: "fileDescriptorResponse",
        value: { fileDescriptorProto: [...closure].map(serialize) },
      },
    };
  };

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const type = registry.get(symbol);
    if (type !== undefined) {
      return type.file;
    }
    // Methods and fields are not types: look up their parent, then the member by name.
    const dot = symbol.lastIndexOf(".");
    const parent = registry.get(symbol.slice(0, dot));
    const member = symbol.slice(dot + 1);
    if (parent?.kind === "service" && parent.methods.some((m) => m.name === member)) {
      return parent.file;
    }
    if (parent?.kind === "message" && parent.fields.some((f) => f.name === member)) {
      return parent.file;
    }
    return undefined;
  };

  return (request) => {
    const notFound = (message: string): ReflectionAnswer => ({
      messageResponse: {
        case: "errorResponse",
        value: { errorCode: Code.NotFound, errorMessage: message },
      },
    });
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return {
          messageResponse: {
            case: "listServicesResponse",
            value: { service: services.map((s) => ({ name: s.typeName })) },
          },
        };
      case "fileByFilename": {
        const file = files.get(messageRequest.value);
        return file ? withDependencies(file) : notFound(`file not found: ${messageRequest.value}`);
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(messageRequest.value);
        return file
          ? withDependencies(file)
          : notFound(`symbol not found: ${messageRequest.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = messageRequest.value;
        const extendee = registry.getMessage(containingType);
        const extension = extendee && registry.getExtensionFor(extendee, extensionNumber);
        return extension
          ? withDependencies(extension.file)
          : notFound(`extension not found: ${containingType} ${extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        const extendee = registry.getMessage(messageRequest.value);
        if (extendee === undefined) {
          return notFound(`type not found: ${messageRequest.value}`);
        }
        const numbers = [...registry]
          .filter((t) => t.kind === "extension" && t.extendee.typeName === extendee.typeName)
          .map((t) => (t.kind === "extension" ? t.number : 0));
        return {
          messageResponse: {
            case: "allExtensionNumbersResponse",
            value: { baseTypeName: extendee.typeName, extensionNumber: numbers },
          },
        };
      }
      case undefined:
        return {
          messageResponse: {
            case: "errorResponse",
            value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" },
          },
        };
    }
  };
}
