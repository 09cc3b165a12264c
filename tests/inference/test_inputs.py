"""trainlab.inference.inputs: which files predict reads from folders, and their true classes."""

from __future__ import annotations

from PIL import Image

from trainlab.inference.inputs import find_inputs, known_truths


def _save(mnist, path, i=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mnist.test_x[i][0].numpy()).save(path)


def test_a_folder_of_class_folders_gives_their_images_and_names(mnist, tmp_path):
    test = tmp_path / "test"
    for i, name in enumerate(["7/a.png", "7/more/b.png", "2/c.PNG", "2/notes.txt"]):
        (test / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("txt"):
            (test / name).write_text("not an image")
        else:
            _save(mnist, test / name, i)
    _save(mnist, test / ".ipynb_checkpoints" / "d.png")  # hidden: not a class
    _save(mnist, test / "7" / ".cache" / "e.png")  # hidden inside a class
    _save(mnist, test / "loose.png")  # beside the class folders: predicted, no class
    found = find_inputs([str(test), str(test / "7" / "a.png")])  # a.png twice: once
    names = [f.removeprefix(str(test) + "/") for f in found.files]
    assert names == ["loose.png", "2/c.PNG", "7/a.png", "7/more/b.png"]
    assert found.folders == [None, "2", "7", "7"] and found.problems == []
    truths, note = known_truths(found, [str(d) for d in range(10)])
    assert truths == [None, "2", "7", "7"] and note is None


def test_folders_that_are_not_the_models_classes_give_no_truths(mnist, tmp_path):
    _save(mnist, tmp_path / "train" / "7" / "a.png")
    _save(mnist, tmp_path / "test" / "7" / "b.png")
    found = find_inputs([str(tmp_path)])
    assert len(found.files) == 2 and found.folders == ["test", "train"]
    truths, note = known_truths(found, [str(d) for d in range(10)])
    assert truths is None and "test, train are not classes" in note
    assert known_truths(find_inputs([str(tmp_path / "test" / "7")]), ["7"]) == (None, None)


def test_an_empty_folder_and_a_missing_path_are_problems(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    found = find_inputs([str(tmp_path / "empty"), str(tmp_path / "gone.png"), "nothing/*.png"])
    assert found.files == []
    assert [why for _, why in found.problems] == [
        found.problems[0][1],
        "no such file or folder",
        "no file matches this pattern",
    ]
    assert "no images" in found.problems[0][1] and "or its folders" in found.problems[0][1]
