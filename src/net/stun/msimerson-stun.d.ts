// The part of @msimerson/stun (CommonJS, no types of its own) that src/net/stun uses.
declare module '@msimerson/stun' {
  interface StunMessage {
    readonly type: number
    readonly transactionId: Buffer
    addXorAddress: (address: string, port: number) => unknown
    toBuffer: () => Buffer
  }
  const stun: {
    decode: (message: Buffer) => StunMessage
    createMessage: (type: number, transactionId?: Buffer) => StunMessage
    constants: Record<string, number>
  }
  export default stun
}
