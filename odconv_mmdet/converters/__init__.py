from .inflate import inflate_state_dict
from .official import UnrecognisedCheckpoint, convert_official, extract_state_dict, strip_detector_prefix

__all__ = ['convert_official', 'inflate_state_dict', 'extract_state_dict', 'strip_detector_prefix',
           'UnrecognisedCheckpoint']
