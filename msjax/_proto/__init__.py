"""Generated protobuf modules (one per proto/<name>.proto); regenerate with proto/generate.py.

Descriptors live in msjax's own pool, so msjax and real MindSpore (same .proto file and message
names) can be imported in one process.
"""
from google.protobuf import descriptor_pool as _descriptor_pool

POOL = _descriptor_pool.DescriptorPool()
