"""The names of the file formats and cipher modes, in one table each (bottom layer, no imports).

The CLI offers these as its choices; the checkpoint code, the crypto table and the exporters
check against them, so a new format or mode is one entry here plus its implementation.
"""

#: checkpoint formats ``save_checkpoint``/``load_checkpoint`` and ``CheckpointConfig`` accept
CHECKPOINT_FORMATS = ("ckpt", "safetensors")

#: graph export formats -> the file suffix ``export`` appends ("GEIR" is AIR's old name)
EXPORT_SUFFIXES = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx", "GEIR": ".air"}
EXPORT_FORMATS = tuple(EXPORT_SUFFIXES)

#: encryption modes of .ckpt and MINDIR files (``enc_mode``/``dec_mode``); the first is the default
CIPHER_MODES = ("AES-GCM", "AES-CBC", "SM4-CBC")
