// pino-roll ships no types: the part of its API src/node/logging.ts uses.
declare module 'pino-roll' {
  import type SonicBoom from 'sonic-boom'
  interface PinoRollOptions {
    file: string | (() => string)
    size?: string | number
    frequency?: 'daily' | 'hourly' | number
    extension?: string
    symlink?: boolean
    limit?: { count?: number, removeOtherLogFiles?: boolean }
    dateFormat?: string
    mkdir?: boolean
    sync?: boolean
  }
  export default function roll (options: PinoRollOptions): Promise<SonicBoom>
}
