"""Generated domain data written in the formats users have (MIMIC-CXR CSVs with DICOM, Karpathy JSON,
CUHK-PEDES JSON), so domain finetuning runs offline. Captions describe what is drawn, so they can be
learnt from the pixels."""
