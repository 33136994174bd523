"""The contract as code (SPEC.md): input and output models, time format, the topic
registry, the codec between record bytes and models, and the JSON Schemas generated from
the models. Imports nothing from the rest of xpbank."""
