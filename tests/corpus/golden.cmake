# Golden tests: one ctest per tests/corpus/samples/NAME.eml, comparing what
# `fbl parse` prints with NAME.json (JSON equality, a diff on mismatch).
# `cmake --build BUILD --target update-golden` rewrites the .json files; review
# the diff: a golden is a claim of correctness, not a snapshot.
set(FBL_GOLDEN_DIR ${CMAKE_CURRENT_SOURCE_DIR}/samples)
set(FBL_GOLDEN_PY ${CMAKE_CURRENT_SOURCE_DIR}/golden.py)

file(GLOB fbl_golden_samples CONFIGURE_DEPENDS ${FBL_GOLDEN_DIR}/*.eml)
foreach(sample IN LISTS fbl_golden_samples)
  get_filename_component(name ${sample} NAME_WLE)
  add_test(NAME corpus/golden/${name}
           COMMAND ${FBL_PYTHON3} ${FBL_GOLDEN_PY} --fbl $<TARGET_FILE:fbl> check ${sample})
  set_tests_properties(corpus/golden/${name} PROPERTIES LABELS corpus)
endforeach()

add_custom_target(update-golden
  COMMAND ${FBL_PYTHON3} ${FBL_GOLDEN_PY} --fbl $<TARGET_FILE:fbl> update ${FBL_GOLDEN_DIR}
  DEPENDS fbl
  COMMENT "Rewriting tests/corpus/samples/*.json from fbl parse"
  VERBATIM)
