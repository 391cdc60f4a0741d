// The WebAssembly JS API, typed locally: the project's TypeScript lib (ES2023, no DOM) does not
// declare the WebAssembly global, and a global declaration here would leak into every folder.

/** A compiled module (opaque here; structured-clonable to worker threads). */
export interface CompiledModule { readonly __compiledWasmModule: unique symbol }

export interface ModuleImportDescriptor { module: string, name: string, kind: string }
export interface ModuleExportDescriptor { name: string, kind: string }

interface WasmApi {
  compile: (bytes: Uint8Array) => Promise<CompiledModule>
  Module: {
    imports: (m: CompiledModule) => ModuleImportDescriptor[]
    exports: (m: CompiledModule) => ModuleExportDescriptor[]
  }
}

export const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
