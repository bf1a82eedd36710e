// Audio worklet of the vpcore console: forwards the microphone's samples, mixed to mono,
// to the page in blocks of 2048 frames (at the audio context's own sample rate).
"use strict";

const BLOCK = 2048;

class VpcoreRecorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        this.block[this.filled++] = sum / channels.length;
        if (this.filled === BLOCK) {
          this.port.postMessage(this.block.slice());
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("vpcore-recorder", VpcoreRecorder);
