// The worker of sum.mjs: posts the numbers it was given, then closes.
import { workerPort } from "@twloop/twloop";

const { port, data } = await workerPort();
for (let n = data.from; n <= data.to; n++) port.post(n); // waits when full
port.close();
