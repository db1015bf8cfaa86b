"""The rules every layer checks what it did not make with: paths from data, artifacts, records and users
(`containment`), credentials kept out of text (`secrets`), and digests of recorded content (`digest`). Pure
Python: it imports no other layer and no heavy library, so the registry, the library, serving and the flows
all stand on it without pointing up."""
