// msgpackr loads this optionally and uses its pure-JavaScript decoder when it throws.
throw new Error('msgpackr-extract is not installed in this project (see stubs/msgpackr-extract/package.json)')
