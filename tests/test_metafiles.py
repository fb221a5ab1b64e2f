"""The model index (model-index.yml and a metafile.yml per config folder, OpenMMLab's schema):
every entry names a config that exists, every config has an entry, and each entry says where its
figures come from."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FOLDERS = sorted(p.parent for p in (ROOT / 'configs').glob('*/*.py') if p.parent.name != '_base_')
FIGURE_SOURCES = ('published target', 'quoted target', 'released by the official', 'measured here',
                  'not trained here', 'not measured')


def metafiles():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    return {path: yaml.safe_load((ROOT / path).read_text()) for path in index['Import']}


def test_the_index_imports_one_metafile_per_config_folder():
    imported = {(ROOT / path).parent for path in metafiles()}
    assert imported == set(CONFIG_FOLDERS)


@pytest.mark.parametrize('path', sorted(metafiles()))
def test_metafile_entries_follow_the_schema_and_name_existing_files(path):
    meta = metafiles()[path]
    collections = {c['Name']: c for c in meta['Collections']}
    for collection in collections.values():
        assert collection['Paper']['Title'] and collection['Paper']['URL'].startswith('https://')
        assert (ROOT / collection['README']).is_file() and (ROOT / collection['Code']['URL']).is_file()
    names = [m['Name'] for m in meta['Models']]
    assert len(names) == len(set(names))
    folder = (ROOT / path).parent
    configs = {p.relative_to(ROOT).as_posix() for p in folder.glob('*.py')}
    assert {m['Config'] for m in meta['Models']} == configs  # every entry a config, every config an entry
    for model in meta['Models']:
        assert model['In Collection'] in collections
        assert model['Name'] == Path(model['Config']).stem
        assert set(model) >= {'Name', 'In Collection', 'Config', 'Metadata', 'Results', 'Weights'}
        assert model['Metadata']['Results Source'].startswith(FIGURE_SOURCES)
        assert isinstance(model['Metadata']['Epochs'], int)
        for result in model['Results']:
            assert result['Task'] and result['Dataset'] and result['Metrics']
            assert all(isinstance(v, (int, float)) for v in result['Metrics'].values())


def test_published_figures_match_the_config_headers():
    """A published target in a metafile is the one the config's own header states."""
    for path, meta in metafiles().items():
        for model in meta['Models']:
            header = (ROOT / model['Config']).read_text().split('_base_')[0]
            for result in model['Results']:
                for value in result['Metrics'].values():
                    if model['Metadata']['Results Source'].startswith(('released', 'quoted')):
                        assert f'{value}' in header, (model['Name'], value)
