"""Installing the plugin into an existing environment leaves its torch alone (offline, in a
throw-away venv whose torch and numpy are stand-ins with the versions a GPU user has)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fake_distribution(site, name, version):
    """A package pip sees as installed at `version` (metadata and a module saying so)."""
    info = site / f'{name}-{version}.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    (info / 'RECORD').write_text('')
    (info / 'INSTALLER').write_text('pip\n')
    (site / name).mkdir()
    (site / name / '__init__.py').write_text(f"__version__ = '{version}'\n")


def venv_with(tmp_path, torch_version):
    venv = tmp_path / f'venv-{torch_version}'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    fake_distribution(site, 'torch', torch_version)
    fake_distribution(site, 'numpy', '1.26.4')
    return python, site


def plugin_wheel(tmp_path):
    """The plugin built as a wheel by this environment, from a copy of its sources (pip builds
    in the source tree)."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'LICENSE', 'README.md'):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / 'odconv_mmdet', src / 'odconv_mmdet', ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-index', '--no-build-isolation',
                    '--disable-pip-version-check', '-w', str(tmp_path / 'dist'), str(src)],
                   capture_output=True, check=True, timeout=300)
    wheels = list((tmp_path / 'dist').glob('odconv_mmdet-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


def pip_install(python, wheel):
    # No index and no configured find-links (PIP_CONFIG_FILE): only what is installed can satisfy
    # the requirements, so any attempt to replace torch or numpy fails the install.
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    env.pop('PIP_FIND_LINKS', None)
    return subprocess.run([str(python), '-m', 'pip', 'install', '--no-index', '--disable-pip-version-check',
                           str(wheel)], capture_output=True, text=True, timeout=300, env=env)


def test_install_keeps_an_existing_cuda_torch(tmp_path):
    python, site = venv_with(tmp_path, '2.1.2+cu121')
    result = pip_install(python, plugin_wheel(tmp_path))
    # --no-index: had pip wanted any other torch or numpy, it could not have found one
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (site / 'torch-2.1.2+cu121.dist-info').is_dir()
    assert (site / 'torch' / '__init__.py').read_text() == "__version__ = '2.1.2+cu121'\n"
    installed = subprocess.run([str(python), '-m', 'pip', 'list', '--format=freeze'], capture_output=True,
                               text=True).stdout.splitlines()
    assert 'torch==2.1.2+cu121' in installed and 'numpy==1.26.4' in installed
    assert any(line.startswith('odconv_mmdet==') or line.startswith('odconv-mmdet==') for line in installed)


def test_install_asks_for_a_torch_the_layer_supports(tmp_path):
    python, _ = venv_with(tmp_path, '1.13.1')
    result = pip_install(python, plugin_wheel(tmp_path))
    assert result.returncode != 0
    assert 'torch>=2.0' in result.stdout + result.stderr
